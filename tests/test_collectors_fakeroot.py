"""node_exporter's collectors end to end on a fake root (``rootfs``): the series they give, a failing
collector isolated, missing sources giving no series, files read again when they change."""
from __future__ import annotations

import os

from collectors_kit import fake_root, samples
from engine.collectors import Env, collect_all, cpu


def test_fake_root_end_to_end(tmp_path):
    env = Env(rootfs=fake_root(tmp_path))
    s = samples(collect_all(env, ["cpu", "meminfo", "loadavg", "diskstats", "netdev", "filefd", "pressure",
                                  "stat", "filesystem"]))
    hz = cpu.USER_HZ
    assert s[("node_cpu_seconds_total", (("cpu", "0"), ("mode", "user")))] == 400 / hz
    assert s[("node_cpu_guest_seconds_total", (("cpu", "0"), ("mode", "user")))] == 11 / hz
    assert s[("node_memory_MemAvailable_bytes", ())] == 12000000 * 1024
    assert s[("node_load1", ())] == 0.5
    assert s[("node_disk_read_bytes_total", (("device", "vda"),))] == 2000 * 512
    assert s[("node_disk_read_time_seconds_total", (("device", "vda"),))] == 0.05
    assert s[("node_network_receive_multicast_total", (("device", "eth0"),))] == 3
    assert s[("node_filefd_maximum", ())] == 100000
    assert s[("node_pressure_io_stalled_seconds_total", ())] == 1.0
    assert s[("node_procs_blocked", ())] == 1 and s[("node_forks_total", ())] == 4242
    assert s[("node_boot_time_seconds", ())] == 1700000000
    data = (("device", "/dev/vda"), ("fstype", "ext4"), ("mountpoint", "/data"))
    assert s[("node_filesystem_device_error", data)] == 0 and s[("node_filesystem_size_bytes", data)] > 0
    gone = (("device", "/dev/vdb"), ("fstype", "xfs"), ("mountpoint", "/gone"))
    assert s[("node_filesystem_device_error", gone)] == 1 and ("node_filesystem_size_bytes", gone) not in s
    spaced = (("device", "/dev/vdc"), ("fstype", "ext4"), ("mountpoint", "/with space"))
    assert s[("node_filesystem_readonly", spaced)] == 1
    assert not any(k[0].startswith("node_filesystem") and ("mountpoint", "/proc") in k[1] for k in s)
    assert all(v == 1 for (name, _), v in s.items() if name == "node_scrape_collector_success")
    assert env.bad.counts == {"meminfo_line": 1}


def test_a_failing_collector_is_isolated(tmp_path):
    """No /proc/diskstats and a garbled loadavg: those two report success 0, the rest carries on."""
    env = Env(rootfs=fake_root(tmp_path, **{"proc/diskstats": None, "proc/loadavg": "garbage\n"}))
    s = samples(collect_all(env, ["cpu", "diskstats", "loadavg", "meminfo"]))
    ok = {dict(k[1])["collector"]: v for k, v in s.items() if k[0] == "node_scrape_collector_success"}
    assert ok == {"cpu": 1, "diskstats": 0, "loadavg": 0, "meminfo": 1}
    assert not any(name.startswith(("node_disk_", "node_load")) for name, _ in s)
    assert ("node_memory_MemFree_bytes", ()) in s
    assert env.bad.counts["collector_error"] == 2


def test_no_pressure_files_is_no_series_not_a_failure(tmp_path):
    env = Env(rootfs=fake_root(tmp_path, **{"proc/pressure/io": None}))
    s = samples(collect_all(env, ["pressure"]))
    assert list(s) == [("node_scrape_collector_duration_seconds", (("collector", "pressure"),)),
                       ("node_scrape_collector_success", (("collector", "pressure"),))]
    assert s[("node_scrape_collector_success", (("collector", "pressure"),))] == 1


def test_missing_sources_give_no_series(tmp_path):
    """No conntrack module, no /sys/class/net, no os-release: no series and success 0 (node_exporter's "no data");
    no selinuxfs: only node_selinux_enabled 0."""
    env = Env(rootfs=fake_root(tmp_path))
    s = samples(collect_all(env, ["conntrack", "netclass", "os", "selinux"]))
    ok = {dict(k[1])["collector"]: v for k, v in s.items() if k[0] == "node_scrape_collector_success"}
    assert ok == {"conntrack": 0, "netclass": 0, "os": 0, "selinux": 1}
    assert [k for k in s if not k[0].startswith("node_scrape_")] == [("node_selinux_enabled", ())]
    assert "collector_error" not in env.bad.counts


def test_new_collectors_on_a_fake_root(tmp_path):
    from engine.collectors import timex
    root = fake_root(tmp_path, **{
        "proc/net/arp": "IP address HW type Flags HW address Mask Device\n10.0.0.1 0x1 0x2 aa * eth0\n"
                        "10.0.0.2 0x1 0x2 bb * eth0\n10.1.0.1 0x1 0x2 cc * eth1\n",
        "proc/net/sockstat": "sockets: used 21\nTCP: inuse 4 orphan 0 tw 57 alloc 4 mem 16\nUDP: inuse 0 mem 2\n",
        "proc/net/softnet_stat": "0000009a 00000001 00000002 0\n00000010 00000000 00000000 0\n",
        "proc/net/udp": "  sl  local_address rem_address   st tx_queue rx_queue\n"
                        "   0: 00000000:0044 00000000:0000 07 00000010:00000200 00:00000000\n",
        "proc/vmstat": "nr_free_pages 5\npgfault 100\npgmajfault 3\noom_kill 1\npswpin 0\n",
        "proc/net/netstat": "TcpExt: ListenDrops TW\nTcpExt: 7 9\n",
        "proc/net/snmp": "Tcp: RtoMin CurrEstab\nTcp: 200 3\nUdp: InDatagrams\nUdp: 5\n",
        "proc/net/snmp6": "Ip6InOctets 128\nUdpLite6InErrors 2\nIp6InReceives 9\n",
        "etc/os-release": 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
        "sys/class/net/eth0/operstate": "up\n", "sys/class/net/eth0/flags": "0x1003\n",
        "sys/class/net/eth0/speed": "1000\n", "sys/class/net/eth0/address": "02:00:00:00:00:01\n",
        "sys/devices/system/clocksource/clocksource0/available_clocksource": "tsc kvm-clock \n",
        "sys/devices/system/clocksource/clocksource0/current_clocksource": "tsc\n"})
    env = Env(rootfs=root)
    s = samples(collect_all(env, ["arp", "sockstat", "softnet", "udp_queues", "vmstat", "netstat", "os",
                                  "netclass", "time"]))
    assert s[("node_arp_entries", (("device", "eth0"),))] == 2
    assert s[("node_sockstat_TCP_mem_bytes", ())] == 16 * os.sysconf("SC_PAGE_SIZE")
    assert s[("node_sockstat_sockets_used", ())] == 21
    assert s[("node_softnet_processed_total", (("cpu", "0"),))] == 0x9a
    assert s[("node_udp_queues", (("ip", "v4"), ("queue", "rx")))] == 0x200
    assert s[("node_vmstat_oom_kill", ())] == 1 and ("node_vmstat_nr_free_pages", ()) not in s
    assert s[("node_netstat_TcpExt_ListenDrops", ())] == 7 and ("node_netstat_TcpExt_TW", ()) not in s
    assert s[("node_netstat_Tcp_CurrEstab", ())] == 3 and s[("node_netstat_UdpLite6_InErrors", ())] == 2
    assert s[("node_netstat_Ip6_InOctets", ())] == 128 and ("node_netstat_Ip6_InReceives", ()) not in s
    assert s[("node_os_version", (("id", "debian"), ("id_like", ""), ("name", "Debian GNU/Linux")))] == 12
    assert s[("node_network_flags", (("device", "eth0"),))] == 0x1003
    assert s[("node_network_speed_bytes", (("device", "eth0"),))] == 125_000_000
    assert s[("node_network_up", (("device", "eth0"),))] == 1
    assert ("node_network_carrier", (("device", "eth0"),)) not in s          # unreadable attribute: absent
    assert s[("node_time_clocksource_current_info", (("clocksource", "tsc"), ("device", "0")))] == 1
    tx = timex.Timex(status=timex.STA_NANO, offset=1500, freq=65536, tick=10000)
    got = {f.name: f.rows[0][1] for f in timex.families(5, tx)}
    assert got["node_timex_offset_seconds"] == 1.5e-6 and got["node_timex_sync_status"] == 0
    assert got["node_timex_frequency_adjustment_ratio"] == 1 + 1e-6 and got["node_timex_tick_seconds"] == 0.01


def test_os_release_read_again_when_the_file_changes(tmp_path):
    root = fake_root(tmp_path, **{"etc/os-release": 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'})
    env = Env(rootfs=root)
    first = samples(collect_all(env, ["os"]))
    (tmp_path / "etc/os-release").write_text('NAME="Debian GNU/Linux"\nVERSION_ID="13"\nID=debian\n')
    second = samples(collect_all(env, ["os"]))
    key = ("node_os_version", (("id", "debian"), ("id_like", ""), ("name", "Debian GNU/Linux")))
    assert (first[key], second[key]) == (12, 13)
