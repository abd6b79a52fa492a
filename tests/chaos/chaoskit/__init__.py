"""The real-network chaos harness (issue 17): network namespaces, fault
injectors, ``ringward node`` processes, a seeded fault schedule and the
judgement of the merged event logs by the project's guarantee checker.

Modules, one job each:

* :mod:`chaoskit.cleanup`: the registry that always undoes what was set up
  (context managers, plus atexit and SIGTERM/SIGHUP handlers, plus a sweep
  of namespaces left by a run that was killed -9);
* :mod:`chaoskit.netns`: a bridge namespace and one namespace per node;
* :mod:`chaoskit.nft`: loss and partitions with nftables inside a node's
  namespace;
* :mod:`chaoskit.relay` (a script run in the bridge namespace) and
  :mod:`chaoskit.relayctl`: delay, jitter, duplication, reordering and rate
  limits where the kernel has no netem;
* :mod:`chaoskit.procs`: node processes, their workload, kill/pause/restart
  and CPU starvation through a cgroup;
* :mod:`chaoskit.schedule`: scenarios and the seeded fault timeline;
* :mod:`chaoskit.judge`: merge, check, measure, one line per scenario;
* :mod:`chaoskit.runner`: one scenario from start to verdict.
"""
