"""The textfile collector: .prom files read, a bad one flagged, and no shadowing of a collector's family."""
from __future__ import annotations

from collectors_kit import fake_root, promtool_problems, samples
from engine import exposition
from engine.collectors import Env, collect_all


def test_textfile_collector_reads_prom_files_and_flags_a_bad_one(tmp_path):
    d = tmp_path / "textfile"
    d.mkdir()
    (d / "backup.prom").write_text('# HELP backup_last_success_seconds Last good backup.\n'
                                   '# TYPE backup_last_success_seconds gauge\n'
                                   'backup_last_success_seconds{db="ob1"} 1.7e9\n'
                                   '# TYPE backup_runs_total counter\nbackup_runs_total 4\n')
    (d / "broken.prom").write_text("this is { not a metric\n")
    (d / "ignored.txt").write_text("x 1\n")
    env = Env(textfile_directory=str(d))
    s = samples(collect_all(env, ["textfile"]))
    assert s[("backup_last_success_seconds", (("db", "ob1"),))] == 1.7e9
    assert s[("backup_runs_total", ())] == 4
    assert s[("node_textfile_scrape_error", ())] == 1
    assert ("node_textfile_mtime_seconds", (("file", "backup.prom"),)) in s
    assert ("node_textfile_mtime_seconds", (("file", "broken.prom"),)) not in s
    text = exposition.render_text(collect_all(env, ["textfile"]))
    assert b"# TYPE backup_runs_total counter" in text and promtool_problems(text) == []
    missing = Env(textfile_directory=str(tmp_path / "nope"))
    assert samples(collect_all(missing, ["textfile"]))[("node_textfile_scrape_error", ())] == 1


def test_textfile_may_not_shadow_a_collector_family(tmp_path):
    from engine import config
    from engine.workers.node_exporter import NodeExporter
    d = tmp_path / "tf"
    d.mkdir()
    (d / "x.prom").write_text("node_load1 99\nmy_metric 1\n")
    sec = config.from_dict({"workers": {"node_exporter": {
        "collectors": ["loadavg", "textfile"], "textfile_directory": str(d), "rootfs": fake_root(tmp_path)}}})
    ex = NodeExporter(sec.workers.node_exporter, exposition.ExpositionServer())
    text = ex.collect().bodies[False].decode()
    assert "node_load1 0.5" in text and "node_load1 99" not in text and "my_metric 1.0" in text
    assert ex.env.bad.counts["textfile_name_taken"] == 1
