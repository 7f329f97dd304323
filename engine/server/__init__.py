"""``engine server``: the ocp-server process, the management side of OCP's process table.

It holds the fleet inventory, manages each host through its pos_proxy (signed
calls), knows who is online, writes Prometheus targets and serves a console.
One module per concern:

- :mod:`.config`: ``server.toml`` (``[server]``, ``[store]``, ``[[clusters]]``, ``[[hosts]]``);
- :mod:`.inventory`: clusters, zones, hosts and their last known state, in
  the central store or an embedded sqlite file;
- :mod:`.agents`: pos_proxy calls on one or many hosts (a secret per host),
  config push, worker restarts, allow-listed commands, trace-id log search;
- :mod:`.pushconf`: the monitor config a host is given (its ``[ob]`` and ``[monitordb]``);
- :mod:`.poller`: online/offline and clock skew; :mod:`.alerting`: those alerts to Alertmanager;
- :mod:`.file_sd`: Prometheus ``file_sd`` target files;
- :mod:`.fleetdata`: TopSQL, SlowSQL, alerts and one SQL's history across hosts;
- :mod:`.auth`, :mod:`.web`, :mod:`.routes`, :mod:`.pages`: the console and ``/api/v1/``;
- :mod:`.app`: wires them and runs; :mod:`.demo`: ``engine demo --hosts N``.
"""
