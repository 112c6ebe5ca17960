"""Photon OS patch status: what is installed on each host, what its repositories offer, and
which updates and advisories apply, computed in the portal (as Katello and Pulp do) rather
than by running tdnf on every host every time.

- :mod:`.records`: the typed records (packages, advisories, a repository's metadata), JSON
  round-trippable so a repository's metadata is cached once and shared by every host using it.
- :mod:`.repodata`: reads a repository's repomd.xml, primary and updateinfo over HTTP, checks
  every checksum and parses them streaming; bad metadata raises :class:`.records.RepoMetadataError`.
- :mod:`.versions`: RPM's version order (rpmvercmp with epoch, version, release).
- :mod:`.installed`: the ``rpm -qa`` command sent over SSH and its parser; the host's
  ``/etc/yum.repos.d/*.repo`` files, read as tdnf reads them.
- :mod:`.applicability`: installed packages + repositories -> updates and advisories per host.
- :mod:`.status`: refreshing hosts' patch status (SSH read, each repository once through
  :mod:`.cache`, the database's per-repository cache, then applicability), stored whole
  (:mod:`.outcome`) or, on failure, the error beside the last good status; published live.
- :mod:`.services` (on demand: who may, which hosts), :mod:`.tasks` (Celery), :mod:`.schedule`
  (the periodic refresh, a watcher), :mod:`.views` (the host page's Updates card, Check now).

tdnf's output is never parsed for decisions: the portal reads rpm and repository metadata.
"""
