// Command govmomi_baseline is the benchmark's yardstick for the portal's vCenter sync:
// it reads the same properties of the same objects the way govc does (one container
// view, RetrievePropertiesEx then ContinueRetrievePropertiesEx, decoded into govmomi's
// mo types) and prints the time of each run, after login, as JSON.
//
// Built from Debian's golang-github-vmware-govmomi-dev in GOPATH mode by
// tests/bench/vsphere_sync.py, cached under var/cache/govmomi_baseline.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net/url"
	"os"
	"time"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// The same paths as hosts/vsphere_sync.py's PROPERTIES.
var properties = map[string][]string{
	"Folder":          {"name", "parent"},
	"Datacenter":      {"name", "parent"},
	"ComputeResource": {"name", "parent"},
	"HostSystem":      {"name", "parent", "runtime.connectionState", "runtime.powerState", "runtime.inMaintenanceMode"},
	"Datastore":       {"name", "parent", "summary.type", "summary.capacity", "summary.freeSpace"},
	"VirtualMachine": {
		"name", "parent", "runtime.powerState", "runtime.host", "config.guestId", "config.guestFullName",
		"config.hardware.numCPU", "config.hardware.memoryMB", "config.annotation", "config.instanceUuid",
		"guest.ipAddress", "guest.hostName", "guest.net", "guest.toolsRunningStatus", "customValue", "snapshot",
	},
}

type report struct {
	VMs   int       `json:"vms"`
	Calls int       `json:"calls"`
	Runs  []float64 `json:"runs"`
}

func main() {
	rawURL := flag.String("url", "", "https://host:port/sdk")
	user := flag.String("user", "", "user name")
	password := flag.String("password", "", "password")
	ca := flag.String("ca", "", "PEM file of the CA that issued vCenter's certificate")
	runs := flag.Int("runs", 3, "how many full reads to time")
	page := flag.Int("page", 1000, "objects per page asked for")
	flag.Parse()
	ctx := context.Background()

	u, err := soap.ParseURL(*rawURL)
	if err != nil {
		log.Fatalf("url: %v", err)
	}
	sc := soap.NewClient(u, false)
	if err := sc.SetRootCAs(*ca); err != nil {
		log.Fatalf("ca: %v", err)
	}
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		log.Fatalf("connect: %v", err)
	}
	if err := session.NewManager(vc).Login(ctx, url.UserPassword(*user, *password)); err != nil {
		log.Fatalf("login: %v", err)
	}

	kinds := make([]string, 0, len(properties))
	specs := make([]types.PropertySpec, 0, len(properties))
	for kind, paths := range properties {
		kinds = append(kinds, kind)
		specs = append(specs, types.PropertySpec{Type: kind, PathSet: paths})
	}
	pc := property.DefaultCollector(vc)
	out := report{}
	for i := 0; i < *runs; i++ {
		started := time.Now()
		v, err := view.NewManager(vc).CreateContainerView(ctx, vc.ServiceContent.RootFolder, kinds, true)
		if err != nil {
			log.Fatalf("view: %v", err)
		}
		req := types.RetrievePropertiesEx{
			This: pc.Reference(),
			SpecSet: []types.PropertyFilterSpec{{
				ObjectSet: []types.ObjectSpec{{
					Obj:  v.Reference(),
					Skip: types.NewBool(true),
					SelectSet: []types.BaseSelectionSpec{
						&types.TraversalSpec{Type: "ContainerView", Path: "view", Skip: types.NewBool(false)},
					},
				}},
				PropSet: specs,
			}},
			Options: types.RetrieveOptions{MaxObjects: int32(*page)},
		}
		res, err := methods.RetrievePropertiesEx(ctx, vc, &req)
		if err != nil {
			log.Fatalf("retrieve: %v", err)
		}
		calls := 1
		var contents []types.ObjectContent
		if res.Returnval != nil {
			contents = res.Returnval.Objects
			token := res.Returnval.Token
			for token != "" {
				next, err := methods.ContinueRetrievePropertiesEx(ctx, vc, &types.ContinueRetrievePropertiesEx{This: pc.Reference(), Token: token})
				if err != nil {
					log.Fatalf("continue: %v", err)
				}
				calls++
				contents = append(contents, next.Returnval.Objects...)
				token = next.Returnval.Token
			}
		}
		var vms []mo.VirtualMachine
		var vmContents []types.ObjectContent
		for _, c := range contents {
			if c.Obj.Type == "VirtualMachine" {
				vmContents = append(vmContents, c)
			}
		}
		if err := mo.LoadObjectContent(vmContents, &vms); err != nil {
			log.Fatalf("decode: %v", err)
		}
		_ = v.Destroy(ctx)
		out.Runs = append(out.Runs, time.Since(started).Seconds())
		out.VMs = len(vms)
		out.Calls = calls
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		log.Fatal(err)
	}
}
