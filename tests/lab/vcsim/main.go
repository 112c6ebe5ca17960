// Command vcsim serves the lab's vCenter: govmomi's simulator with an inventory
// shaped like a Photon OS fleet.
//
// Debian's golang-github-vmware-govmomi-dev ships the simulator library but not
// the vcsim command, so this is the lab's own, built in GOPATH mode by
// tests/lab/vcenter.py. The inventory is deterministic (same flags, same
// managed object ids, names, guests and addresses), so a restart with the same
// flags serves the same model again.
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

const (
	photonGuestID       = "vmwarePhoton64Guest"
	photonGuestFullName = "VMware Photon OS (64-bit)"
	// open-vm-tools 12.2 as shipped with Photon OS 5.
	photonToolsVersion = "12352"
)

// Names a page must escape: markup, quotes and ampersands, non-ASCII.
var awkwardNames = []string{
	`<script>alert("vm")</script>`,
	`O'Brien & "Sons"`,
	"photon-ü-01",
}

// Guests of the VMs that are not Photon, so a portal must filter on the guest id.
var otherGuests = []struct{ id, fullName string }{
	{"ubuntu64Guest", "Ubuntu Linux (64-bit)"},
	{"centos7_64Guest", "CentOS 7 (64-bit)"},
	{"windows9Server64Guest", "Microsoft Windows Server 2016 or later (64-bit)"},
	{"otherGuest", "Other (32-bit)"},
}

// guestAddress is a guest's network identity; the lab may hand in real ones
// (its SSH hosts) for the first Photon VMs.
type guestAddress struct {
	IP       string `json:"ip"`
	HostName string `json:"hostname"`
}

type readyInfo struct {
	URL        string   `json:"url"`
	PID        int      `json:"pid"`
	VMs        int      `json:"vms"`
	PhotonVMs  int      `json:"photon_vms"`
	Awkward    []string `json:"awkward_names"`
	PoweredOff []string `json:"powered_off_photon"`
	Templates  []string `json:"templates"`
}

type options struct {
	listen, username, password string
	certFile, keyFile          string
	readyFile, guestsFile      string
	datacenters, clusters      int
	hosts, vmsPerPool          int
	templates                  int
	photonShare                float64
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.listen, "listen", "127.0.0.1:0", "address to serve on")
	flag.StringVar(&o.username, "username", "lab", "the only user name accepted")
	flag.StringVar(&o.password, "password", "lab", "the only password accepted")
	flag.StringVar(&o.certFile, "tls-cert", "", "PEM certificate to serve (default: the simulator's built-in one)")
	flag.StringVar(&o.keyFile, "tls-key", "", "PEM key of -tls-cert")
	flag.StringVar(&o.readyFile, "ready", "", "write a JSON description here once serving")
	flag.StringVar(&o.guestsFile, "guests", "", "JSON list of {ip, hostname} for the first Photon VMs")
	flag.IntVar(&o.datacenters, "dc", 1, "datacenters")
	flag.IntVar(&o.clusters, "cluster", 2, "clusters per datacenter")
	flag.IntVar(&o.hosts, "host", 2, "hosts per cluster")
	flag.IntVar(&o.vmsPerPool, "vm", 2, "VMs per cluster resource pool")
	flag.Float64Var(&o.photonShare, "photon-share", 0.3, "fraction of VMs that are Photon OS guests")
	flag.IntVar(&o.templates, "templates", 0, "Photon VMs to mark as templates (powered off, named photon-5-template-N)")
	flag.Parse()
	return o
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	o := parseFlags()

	// Create places each VM on a random host of its cluster: a fixed seed keeps
	// the placement, like everything else, the same on every start.
	rand.Seed(1)
	model := simulator.VPX()
	model.Datacenter = o.datacenters
	model.Cluster = o.clusters
	model.ClusterHost = o.hosts
	model.Machine = o.vmsPerPool
	// VMs are made per resource pool; a standalone host would add a pool per datacenter.
	model.Host = 0
	started := time.Now()
	if err := model.Create(); err != nil {
		log.Fatalf("create model: %v", err)
	}
	log.Printf("model created in %s", time.Since(started).Round(time.Millisecond))

	guests, err := readGuests(o.guestsFile)
	if err != nil {
		log.Fatalf("guests: %v", err)
	}
	info, photonVMs := shapeFleet(o.photonShare, guests)
	if err := markTemplates(&info, photonVMs, o.templates, len(guests)); err != nil {
		model.Remove()
		log.Fatalf("templates: %v", err)
	}
	installPagingCollector()

	model.Service.Listen = &url.URL{Host: o.listen, User: url.UserPassword(o.username, o.password)}
	if o.certFile != "" {
		cert, err := tlsCertificate(o.certFile, o.keyFile)
		if err != nil {
			model.Remove()
			log.Fatalf("tls: %v", err)
		}
		model.Service.TLS = cert
	} else {
		model.Service.TLS = defaultTLS()
	}
	server := model.Service.NewServer()

	u := *server.URL
	u.User = nil
	info.URL = u.String()
	info.PID = os.Getpid()
	if err := writeReady(o.readyFile, info); err != nil {
		server.Close()
		model.Remove()
		log.Fatalf("ready file: %v", err)
	}
	log.Printf("serving %s: %d VMs, %d Photon", info.URL, info.VMs, info.PhotonVMs)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	sig := <-stop
	log.Printf("%s: stopping", sig)
	server.Close()
	// Removes the datastore directories the model made under TMPDIR.
	model.Remove()
}

// vmsInOrder lists VMs by creation order, so choices based on position are
// the same on every start (the registry is a map).
func vmsInOrder() []*simulator.VirtualMachine {
	var vms []*simulator.VirtualMachine
	for _, e := range simulator.Map.All("VirtualMachine") {
		vms = append(vms, e.(*simulator.VirtualMachine))
	}
	sort.Slice(vms, func(i, j int) bool { return morefNumber(vms[i]) < morefNumber(vms[j]) })
	return vms
}

func morefNumber(vm *simulator.VirtualMachine) int {
	value := vm.Self.Value
	n, _ := strconv.Atoi(value[strings.LastIndex(value, "-")+1:])
	return n
}

// shapeFleet turns an evenly spread share of the VMs into Photon guests with
// addresses and host names, gives the rest other guests, renames the first
// Photon VMs to awkward names, and powers the last Photon VM off (a real fleet
// has one; its guest then reports no address).
func shapeFleet(share float64, guests []guestAddress) (readyInfo, []*simulator.VirtualMachine) {
	vms := vmsInOrder()
	total := len(vms)
	photon := int(float64(total)*share + 0.5)
	if photon > total {
		photon = total
	}
	info := readyInfo{VMs: total, PhotonVMs: photon, Awkward: []string{}, PoweredOff: []string{}, Templates: []string{}}
	var photonVMs []*simulator.VirtualMachine
	nPhoton, nOther := 0, 0
	for i, vm := range vms {
		isPhoton := photon > 0 && (i*photon)/total != ((i+1)*photon)/total
		if !isPhoton {
			setOtherGuest(vm, otherGuests[nOther%len(otherGuests)])
			nOther++
			continue
		}
		addr := guestAddress{IP: documentationIP(nPhoton), HostName: fmt.Sprintf("photon-%04d.lab.example", nPhoton)}
		if nPhoton < len(guests) {
			addr = guests[nPhoton]
		}
		if nPhoton < len(awkwardNames) {
			rename(vm, awkwardNames[nPhoton])
			info.Awkward = append(info.Awkward, vm.Name)
		}
		poweredOff := photon > len(awkwardNames)+1 && nPhoton == photon-1 && nPhoton >= len(guests)
		if poweredOff {
			setPhotonGuest(vm, nil)
			powerOff(vm)
			info.PoweredOff = append(info.PoweredOff, vm.Name)
		} else {
			setPhotonGuest(vm, &addr)
		}
		photonVMs = append(photonVMs, vm)
		nPhoton++
	}
	return info, photonVMs
}

// markTemplates turns n Photon VMs into templates, as an admin keeps a Photon OS
// image to clone from: the ones just before the last (which stays the fleet's
// powered-off VM), never one that points at a lab host.
func markTemplates(info *readyInfo, photon []*simulator.VirtualMachine, n int, guests int) error {
	if n <= 0 {
		return nil
	}
	last := len(photon) - 1
	if last-n < guests {
		return fmt.Errorf("%d templates asked of %d Photon VMs (%d point at lab hosts)", n, len(photon), guests)
	}
	for i := 1; i <= n; i++ {
		vm := photon[last-i]
		info.Awkward = without(info.Awkward, vm.Name)
		setPhotonGuest(vm, nil)
		powerOff(vm)
		rename(vm, fmt.Sprintf("photon-5-template-%d", i))
		if res := vm.MarkAsTemplate(&types.MarkAsTemplate{This: vm.Self}); res.Fault() != nil {
			return fmt.Errorf("mark %s as template: %v", vm.Name, res.Fault().VimFault())
		}
		info.Templates = append(info.Templates, vm.Name)
	}
	return nil
}

func without(names []string, name string) []string {
	kept := []string{}
	for _, n := range names {
		if n != name {
			kept = append(kept, n)
		}
	}
	return kept
}

// documentationIP gives the n-th Photon guest an address nobody can reach:
// the three TEST-NET blocks, then the benchmarking block 198.18.0.0/15.
func documentationIP(n int) string {
	blocks := []string{"192.0.2", "198.51.100", "203.0.113"}
	if n < 254*len(blocks) {
		return fmt.Sprintf("%s.%d", blocks[n/254], n%254+1)
	}
	n -= 254 * len(blocks)
	return fmt.Sprintf("198.%d.%d.%d", 18+n/(254*256), (n/254)%256, n%254+1)
}

func rename(vm *simulator.VirtualMachine, name string) {
	vm.Name = name
	vm.Config.Name = name
	vm.Summary.Config.Name = name
}

// setGuestID sets the configured guest; the summary shows it too (Create left
// the simulator's default there).
func setGuestID(vm *simulator.VirtualMachine, id, fullName string) {
	vm.Config.GuestId = id
	vm.Config.GuestFullName = fullName
	vm.Summary.Config.GuestId = id
	vm.Summary.Config.GuestFullName = fullName
	vm.Summary.Guest.GuestId = id
	vm.Summary.Guest.GuestFullName = fullName
}

func setOtherGuest(vm *simulator.VirtualMachine, g struct{ id, fullName string }) {
	setGuestID(vm, g.id, g.fullName)
}

// setPhotonGuest makes vm a Photon OS guest; with an address its tools run and
// report it, without one the guest is down.
func setPhotonGuest(vm *simulator.VirtualMachine, addr *guestAddress) {
	setGuestID(vm, photonGuestID, photonGuestFullName)
	g := vm.Guest
	g.GuestId = photonGuestID
	g.GuestFullName = photonGuestFullName
	g.GuestFamily = string(types.VirtualMachineGuestOsFamilyLinuxGuest)
	g.ToolsVersion = photonToolsVersion
	g.ToolsVersionStatus2 = string(types.VirtualMachineToolsVersionStatusGuestToolsUnmanaged)
	g.ToolsStatus = types.VirtualMachineToolsStatusToolsNotRunning
	g.ToolsRunningStatus = string(types.VirtualMachineToolsRunningStatusGuestToolsNotRunning)
	g.GuestState = "notRunning"
	if addr != nil {
		g.ToolsStatus = types.VirtualMachineToolsStatusToolsOk
		g.ToolsRunningStatus = string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
		g.GuestState = "running"
		g.HostName = addr.HostName
		g.IpAddress = addr.IP
		if len(g.Net) > 0 {
			g.Net[0].IpAddress = []string{addr.IP}
			g.Net[0].Connected = true
		}
	}
	s := vm.Summary.Guest
	s.GuestId = g.GuestId
	s.GuestFullName = g.GuestFullName
	s.ToolsStatus = g.ToolsStatus
	s.ToolsVersionStatus2 = g.ToolsVersionStatus2
	s.ToolsRunningStatus = g.ToolsRunningStatus
	s.HostName = g.HostName
	s.IpAddress = g.IpAddress
}

func powerOff(vm *simulator.VirtualMachine) {
	vm.Runtime.PowerState = types.VirtualMachinePowerStatePoweredOff
	vm.Runtime.BootTime = nil
	vm.Summary.Runtime.PowerState = types.VirtualMachinePowerStatePoweredOff
	vm.Summary.Runtime.BootTime = nil
}

func readGuests(path string) ([]guestAddress, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var guests []guestAddress
	if err := json.Unmarshal(data, &guests); err != nil {
		return nil, err
	}
	for _, g := range guests {
		if net.ParseIP(g.IP) == nil {
			return nil, fmt.Errorf("not an IP address: %q", g.IP)
		}
	}
	return guests, nil
}

// writeReady writes atomically, so a reader never sees half a file.
func writeReady(path string, info readyInfo) error {
	if path == "" {
		return nil
	}
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func tlsCertificate(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}, nil
}

// defaultTLS makes the simulator serve its built-in localhost certificate.
func defaultTLS() *tls.Config {
	return new(tls.Config)
}

// pagingCollector is the simulator's property collector answering in pages the
// way vCenter does: RetrievePropertiesEx returns at most RetrieveOptions.maxObjects
// objects and a token, ContinueRetrievePropertiesEx the next page for the token,
// CancelRetrievePropertiesEx forgets it. govmomi 0.24's simulator ignores
// maxObjects and lacks the other two, so a client's paging would go untested.
//
// It embeds the collector by value: the simulator makes each session its own
// collector with reflect.New of the registered type, so a zero value must work.
type pagingCollector struct {
	simulator.PropertyCollector

	pagesMu sync.Mutex
	pages   map[string]*pendingRetrieval
	issued  int
}

// pendingRetrieval is what is left of one retrieval: a snapshot taken when it
// started, as vCenter answers a retrieval from one consistent read.
type pendingRetrieval struct {
	rest     []types.ObjectContent
	pageSize int
}

const maxPendingRetrievals = 64

func installPagingCollector() {
	si := simulator.Map.Get(vim25.ServiceInstance).(*simulator.ServiceInstance)
	ref := si.Content.PropertyCollector
	pc := &pagingCollector{}
	pc.Self = ref
	simulator.Map.Put(pc)
}

func (pc *pagingCollector) RetrievePropertiesEx(ctx *simulator.Context, r *types.RetrievePropertiesEx) soap.HasFault {
	res := pc.PropertyCollector.RetrievePropertiesEx(ctx, r)
	body, ok := res.(*methods.RetrievePropertiesExBody)
	if !ok || body.Fault_ != nil || body.Res == nil || body.Res.Returnval == nil {
		return res
	}
	result := body.Res.Returnval
	result.Token = pc.keep(result.Objects, int(r.Options.MaxObjects))
	if result.Token != "" {
		result.Objects = result.Objects[:r.Options.MaxObjects]
	}
	return body
}

// keep remembers the objects after the first page and returns their token; ""
// when everything fits in one page (maxObjects unset or not exceeded).
func (pc *pagingCollector) keep(objects []types.ObjectContent, pageSize int) string {
	if pageSize <= 0 || len(objects) <= pageSize {
		return ""
	}
	pc.pagesMu.Lock()
	defer pc.pagesMu.Unlock()
	if pc.pages == nil {
		pc.pages = make(map[string]*pendingRetrieval)
	}
	// A client that walks away without cancelling must not grow the lab forever:
	// like vCenter, forget the oldest retrievals.
	for len(pc.pages) >= maxPendingRetrievals {
		oldest := ""
		for t := range pc.pages {
			if oldest == "" || len(t) < len(oldest) || (len(t) == len(oldest) && t < oldest) {
				oldest = t
			}
		}
		delete(pc.pages, oldest)
	}
	pc.issued++
	token := strconv.Itoa(pc.issued)
	rest := make([]types.ObjectContent, len(objects)-pageSize)
	copy(rest, objects[pageSize:])
	pc.pages[token] = &pendingRetrieval{rest: rest, pageSize: pageSize}
	return token
}

func (pc *pagingCollector) ContinueRetrievePropertiesEx(ctx *simulator.Context, r *types.ContinueRetrievePropertiesEx) soap.HasFault {
	body := &methods.ContinueRetrievePropertiesExBody{}
	pc.pagesMu.Lock()
	defer pc.pagesMu.Unlock()
	pending, ok := pc.pages[r.Token]
	if !ok {
		body.Fault_ = simulator.Fault("unknown or finished retrieval token", &types.InvalidArgument{InvalidProperty: "token"})
		return body
	}
	n := pending.pageSize
	if n > len(pending.rest) {
		n = len(pending.rest)
	}
	result := types.RetrieveResult{Objects: pending.rest[:n]}
	pending.rest = pending.rest[n:]
	if len(pending.rest) == 0 {
		delete(pc.pages, r.Token)
	} else {
		result.Token = r.Token
	}
	body.Res = &types.ContinueRetrievePropertiesExResponse{Returnval: result}
	return body
}

func (pc *pagingCollector) CancelRetrievePropertiesEx(ctx *simulator.Context, r *types.CancelRetrievePropertiesEx) soap.HasFault {
	body := &methods.CancelRetrievePropertiesExBody{}
	pc.pagesMu.Lock()
	defer pc.pagesMu.Unlock()
	if _, ok := pc.pages[r.Token]; !ok {
		body.Fault_ = simulator.Fault("unknown or finished retrieval token", &types.InvalidArgument{InvalidProperty: "token"})
		return body
	}
	delete(pc.pages, r.Token)
	body.Res = &types.CancelRetrievePropertiesExResponse{}
	return body
}
