"""pos_proxy file/*: every operation, and every way out of the roots refused."""
from __future__ import annotations

import base64
import hashlib
import os

import pytest


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "a.log").write_bytes(b"".join(b"line %d\n" % i for i in range(1000)))
    (root / "bin.dat").write_bytes(bytes(range(256)))
    (root / "sub" / "b.txt").write_text("hello\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret\n")
    os.symlink(outside / "secret.txt", root / "escape.txt")        # a file symlink out of the root
    os.symlink(outside, root / "escape_dir")                       # a directory symlink out
    os.symlink(root / "sub" / "b.txt", root / "inside_link.txt")   # a symlink that stays inside
    return root, outside


def ok(srv, op, **params):
    status, env = srv.call(op, params)
    assert status == 200, env
    return env["data"]


def err(srv, op, **params):
    status, env = srv.call(op, params)
    assert status >= 400 and not env["successful"], env
    return status, env["error"]["code"]


def test_stat_list_read_tail_checksum(rpc_server, tree):
    root, _ = tree
    srv = rpc_server(file_roots=[str(root)])
    st = ok(srv, "file/stat", path=str(root / "a.log"))
    assert st["type"] == "file" and st["size"] == (root / "a.log").stat().st_size
    names = [e["name"] for e in ok(srv, "file/list", path=str(root))["entries"]]
    assert names == sorted(["a.log", "bin.dat", "sub", "escape.txt", "escape_dir", "inside_link.txt"])
    got = ok(srv, "file/read", path=str(root / "a.log"), offset=7, length=14)
    assert got["data"] == "line 1\nline 2\n" and got["eof"] is False
    got = ok(srv, "file/read", path=str(root / "bin.dat"), encoding="base64")
    assert base64.b64decode(got["data"]) == bytes(range(256)) and got["eof"]
    tail = ok(srv, "file/tail", path=str(root / "a.log"), lines=3)
    assert tail["data"] == "line 997\nline 998\nline 999\n" and tail["lines"] == 3
    assert tail["offset"] + len(tail["data"]) == tail["size"]
    digest = ok(srv, "file/checksum", path=str(root / "a.log"))["digest"]
    assert digest == hashlib.sha256((root / "a.log").read_bytes()).hexdigest()
    md5 = ok(srv, "file/checksum", path=str(root / "a.log"), algorithm="md5")["digest"]
    assert md5 == hashlib.md5((root / "a.log").read_bytes()).hexdigest()


def test_tail_of_a_file_without_final_newline_and_more_lines_than_exist(rpc_server, tmp_path):
    (tmp_path / "x").write_text("one\ntwo\nthree")
    srv = rpc_server(file_roots=[str(tmp_path)])
    assert ok(srv, "file/tail", path=str(tmp_path / "x"), lines=2)["data"] == "two\nthree"
    assert ok(srv, "file/tail", path=str(tmp_path / "x"), lines=50)["data"] == "one\ntwo\nthree"


def test_a_symlink_inside_the_root_is_followed(rpc_server, tree):
    root, _ = tree
    srv = rpc_server(file_roots=[str(root)])
    assert ok(srv, "file/read", path=str(root / "inside_link.txt"))["data"] == "hello\n"


@pytest.mark.parametrize("rel", ["../outside/secret.txt", "sub/../../outside/secret.txt",
                                 "escape.txt", "escape_dir/secret.txt", "escape_dir"])
def test_escapes_are_refused(rpc_server, tree, rel):
    root, _ = tree
    srv = rpc_server(file_roots=[str(root)])
    for op in ("file/stat", "file/read", "file/tail", "file/list", "file/checksum"):
        assert err(srv, op, path=f"{root}/{rel}") == (403, "outside_roots")


def test_absolute_relative_and_nul_paths(rpc_server, tree):
    root, _ = tree
    srv = rpc_server(file_roots=[str(root)])
    assert err(srv, "file/read", path="/etc/passwd") == (403, "outside_roots")
    assert err(srv, "file/stat", path="/") == (403, "outside_roots")
    assert err(srv, "file/read", path="a.log") == (400, "relative_path")
    assert err(srv, "file/read", path=f"{root}/a.log\x00.txt") == (400, "nul_byte")


def test_no_roots_means_nothing_is_reachable(rpc_server, tree):
    root, _ = tree
    srv = rpc_server()
    assert err(srv, "file/stat", path=str(root / "a.log")) == (403, "outside_roots")


def test_bad_requests(rpc_server, tree):
    root, _ = tree
    srv = rpc_server(file_roots=[str(root)])
    assert err(srv, "file/read", path=str(root / "missing")) == (404, "not_found")
    assert err(srv, "file/read", path=str(root / "sub")) == (400, "not_a_file")
    assert err(srv, "file/list", path=str(root / "a.log")) == (400, "not_a_directory")
    assert err(srv, "file/read", path=str(root / "a.log"), length=-1)[0] == 400
    assert err(srv, "file/read", path=str(root / "a.log"), length=10 ** 9)[0] == 400
    for offset in (2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1):     # past off_t (pread/seek would raise): 400, not 500
        assert err(srv, "file/read", path=str(root / "a.log"), offset=offset)[0] == 400
    assert ok(srv, "file/read", path=str(root / "a.log"), offset=2 ** 40)["data"] == ""
    assert err(srv, "file/checksum", path=str(root / "a.log"), algorithm="crc32")[0] == 400
    assert err(srv, "file/read", path=str(root / "a.log"), bogus=1)[0] == 400
    assert err(srv, "file/read", path=123)[0] == 400
    assert err(srv, "file/read")[0] == 400


def test_a_symlink_swapped_in_after_the_check_is_caught(rpc_server, tree):
    """The real path of the opened descriptor is checked again (no check-then-open race)."""
    from engine.rpc.files import Files
    from engine.rpc import RpcError
    root, outside = tree
    files = Files([str(root)], 1 << 20, 10)
    target = root / "swap.txt"
    target.write_text("inside\n")
    real_resolve = files.resolve

    def resolve_then_swap(raw):
        real = real_resolve(raw)
        target.unlink()
        os.symlink(outside / "secret.txt", target)
        return real

    files.resolve = resolve_then_swap
    with pytest.raises(RpcError) as exc:
        files.read({"path": str(target)})
    assert exc.value.code in ("symlink", "outside_roots")


@pytest.mark.parametrize("op", ["file/list", "file/stat"])
def test_a_directory_swapped_for_a_symlink_after_the_check_is_caught(tree, op):
    """list and stat use a descriptor checked like read's, not the path again."""
    from engine.rpc.files import Files
    from engine.rpc import RpcError
    root, outside = tree
    files = Files([str(root)], 1 << 20, 10)
    target = root / "d"
    target.mkdir()
    (target / "mine.txt").write_text("inside\n")
    real_resolve = files.resolve

    def resolve_then_swap(raw):
        real = real_resolve(raw)
        target.rename(root / "d.old")
        os.symlink(outside, target)
        return real

    files.resolve = resolve_then_swap
    handler = files.ops()[op]
    with pytest.raises(RpcError) as exc:
        handler({"path": str(target)})
    assert exc.value.code in ("symlink", "outside_roots", "not_a_directory")   # O_DIRECTORY|O_NOFOLLOW: ENOTDIR


def test_list_and_stat_describe_entries(rpc_server, tree):
    root, _ = tree
    srv = rpc_server(file_roots=[str(root)])
    entries = {e["name"]: e for e in ok(srv, "file/list", path=str(root))["entries"]}
    assert entries["sub"]["type"] == "dir" and entries["escape.txt"]["type"] == "link"
    assert entries["a.log"]["type"] == "file" and entries["a.log"]["size"] == (root / "a.log").stat().st_size
    assert ok(srv, "file/stat", path=str(root / "sub"))["type"] == "dir"
    assert ok(srv, "file/stat", path=str(root / "inside_link.txt"))["size"] == 6     # followed, inside
    os.mkfifo(root / "fifo")
    assert ok(srv, "file/stat", path=str(root / "fifo"))["type"] == "other"         # never blocks
    assert err(srv, "file/read", path=str(root / "fifo")) == (400, "not_a_file")
    assert err(srv, "file/list", path=str(root / "fifo")) == (400, "not_a_directory")


# ---------------------------------------------------------------- issue 12

@pytest.mark.parametrize("op", ["file/read", "file/tail", "file/checksum"])
def test_a_fifo_is_refused_without_being_opened(rpc_server, tree, op):
    """Issue 12: read, tail and checksum opened a FIFO before refusing it, which released a
    writer blocked on it. The type is now checked on an O_PATH descriptor, which opens nothing."""
    import threading
    root, _ = tree
    fifo = root / "pipe.log"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: os.close(os.open(fifo, os.O_WRONLY)), daemon=True)
    writer.start()                               # blocks until someone opens the FIFO for reading
    try:
        srv = rpc_server(file_roots=[str(root)])
        assert err(srv, op, path=str(fifo)) == (400, "not_a_file")
        writer.join(2)
        assert writer.is_alive(), "the FIFO was opened: its blocked writer was released"
    finally:
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))     # let the writer go
        writer.join(10)


@pytest.mark.parametrize("roots, reason", [
    ([""], "non-empty string"), (["relative/dir"], "not an absolute path"), ([1], "non-empty string"),
])
def test_file_roots_must_be_absolute_directories(rpc_server, roots, reason):
    """Issue 12: file_roots = [""] was accepted and meant the supervisor's working directory."""
    from engine.errors import ConfigError
    with pytest.raises(ConfigError) as exc:
        rpc_server(file_roots=roots)
    assert "workers.pos_proxy.file_roots" in str(exc.value) and reason in str(exc.value)


def test_a_path_swapped_while_it_is_resolved_is_a_4xx_never_a_500(rpc_server, tree):
    """Issue 12: a component swapped between realpath's lstat and readlink raised EINVAL (500).
    (A race: this run may or may not hit that window; the answer must be a 4xx whenever it does.)"""
    import threading
    root, _ = tree
    flip = root / "flip"
    stop = threading.Event()

    def flipper():                       # flip/ is a directory, then a symlink to sub/, and so on
        (root / "flipdir").mkdir()
        (root / "flipdir" / "b.txt").write_text("x\n")
        while not stop.is_set():
            os.rename(root / "flipdir", flip)
            os.rename(flip, root / "flipdir")
            os.symlink(root / "sub", flip)
            os.unlink(flip)

    t = threading.Thread(target=flipper, daemon=True)
    t.start()
    statuses = []
    try:
        srv = rpc_server(file_roots=[str(root)])
        client = srv.client()
        for _ in range(300):
            for op in ("file/stat", "file/read"):
                statuses.append(client.call(op, {"path": str(flip / "b.txt")})[0])
        client.close()
    finally:
        stop.set()
        t.join(10)
    assert 500 not in statuses and set(statuses) <= {200, 400, 403, 404, 409}, sorted(set(statuses))
