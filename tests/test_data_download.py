"""minidl.data.download against a local HTTP server on 127.0.0.1 (no internet)."""
import gzip
import hashlib
import http.server
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from minidl.data import load_dataset, write_idx
from minidl.data.download import CHECKSUMS, MIRRORS, checksum_matches, download

FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www on a free port; yield (directory, base_url, request log)."""
    www = tmp_path / "www"
    www.mkdir()
    requests = []

    class Handler(_QuietHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{httpd.server_address[1]}/", requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _serve_small_mnist(www):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": (np.arange(20) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": (np.arange(10)[::-1] % 10).astype(np.uint8),
    }
    md5 = {}
    for name, array in arrays.items():
        write_idx(www / name, array)
        md5[name] = hashlib.md5((www / name).read_bytes()).hexdigest()
    return arrays, md5


def test_download_fetches_verifies_and_loads(server, tmp_path, monkeypatch):
    www, base_url, requests = server
    arrays, md5 = _serve_small_mnist(www)
    out = download("mnist", root=tmp_path / "data", base_url=base_url, checksums=md5, verbose=False)
    assert out == tmp_path / "data" / "mnist"
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)           # no temp files left
    assert sorted(requests) == sorted("/" + f for f in FILES)
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    test = load_dataset("mnist", "test", root=tmp_path / "data")
    np.testing.assert_array_equal(test.labels, arrays["t10k-labels-idx1-ubyte.gz"])
    np.testing.assert_allclose(test.images[:, 0] * 255, arrays["t10k-images-idx3-ubyte.gz"], atol=1e-3)
    # a second call finds the verified files and fetches nothing
    download("mnist", root=tmp_path / "data", base_url=base_url, checksums=md5, verbose=False)
    assert len(requests) == 4


def test_downloaded_files_get_the_permissions_of_any_new_file(server, tmp_path):
    """They were written through tempfile.mkstemp, readable by their owner only:
    a download into a shared directory was unreadable to everyone else."""
    www, base_url, _ = server
    _, md5 = _serve_small_mnist(www)
    out = download("mnist", root=tmp_path / "data", base_url=base_url, checksums=md5, verbose=False)
    (tmp_path / "plain").write_bytes(b"")
    expected = (tmp_path / "plain").stat().st_mode & 0o777
    assert {f: (out / f).stat().st_mode & 0o777 for f in FILES} == {f: expected for f in FILES}


def test_download_defaults_to_the_user_data_dir(server, tmp_path, monkeypatch):
    www, base_url, _ = server
    _, md5 = _serve_small_mnist(www)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    out = download("fashion-mnist", base_url=base_url, checksums=md5, verbose=False)
    assert out == tmp_path / "xdg" / "minidl" / "fashion-mnist"
    assert (out / "t10k-labels-idx1-ubyte.gz").is_file()


def test_checksum_mismatch_is_rejected_and_leaves_no_file(server, tmp_path):
    www, base_url, _ = server
    _, md5 = _serve_small_mnist(www)
    md5["t10k-images-idx3-ubyte.gz"] = "0" * 32                               # wrong on purpose
    with pytest.raises(ValueError, match="checksum mismatch for t10k-images-idx3-ubyte.gz.*file not kept"):
        download("mnist", root=tmp_path / "data", base_url=base_url, checksums=md5, verbose=False)
    left = [p.name for p in (tmp_path / "data" / "mnist").iterdir()]
    assert "t10k-images-idx3-ubyte.gz" not in left
    assert not [name for name in left if name.endswith(".part")]


def test_corrupted_existing_file_is_replaced(server, tmp_path):
    www, base_url, requests = server
    _, md5 = _serve_small_mnist(www)
    target = tmp_path / "data" / "mnist"
    target.mkdir(parents=True)
    (target / "train-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    download("mnist", root=tmp_path / "data", base_url=base_url, checksums=md5, verbose=False)
    assert (target / "train-labels-idx1-ubyte.gz").read_bytes() == (www / "train-labels-idx1-ubyte.gz").read_bytes()


def test_missing_file_on_server_raises_oserror(server, tmp_path):
    www, base_url, _ = server
    _, md5 = _serve_small_mnist(www)
    (www / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(OSError, match="could not fetch t10k-labels-idx1-ubyte.gz"):
        download("mnist", root=tmp_path / "data", base_url=base_url, checksums=md5, verbose=False)


def test_recompressed_file_accepted_by_uncompressed_sha256():
    raw = b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02\x03"
    a, b = gzip.compress(raw, mtime=0), gzip.compress(raw, compresslevel=1, mtime=12345)
    assert a != b
    entry = {"md5": hashlib.md5(a).hexdigest(), "raw_sha256": hashlib.sha256(raw).hexdigest()}
    assert checksum_matches(a, entry) and checksum_matches(b, entry)
    assert not checksum_matches(gzip.compress(raw + b"\x04"), entry)
    assert not checksum_matches(b, {"md5": entry["md5"]})
    assert not checksum_matches(b"not gzip", entry)


def test_builtin_table_is_complete_and_well_formed():
    assert set(CHECKSUMS) == set(MIRRORS) == {"mnist", "fashion-mnist"}
    for name, table in CHECKSUMS.items():
        assert sorted(table) == sorted(FILES)
        for entry in table.values():
            assert len(entry["md5"]) == 32 and int(entry["md5"], 16) >= 0
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'"):
        download("cifar10")


@pytest.mark.skipif(not (DEBIAN_FASHION / "t10k-labels-idx1-ubyte.gz").is_file(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_debian_fashion_files_pass_the_builtin_checksums():
    for name in FILES:
        assert checksum_matches((DEBIAN_FASHION / name).read_bytes(), CHECKSUMS["fashion-mnist"][name]), name


def test_falls_back_to_the_next_mirror(server, tmp_path, monkeypatch):
    www, base_url, requests = server
    _, md5 = _serve_small_mnist(www)
    monkeypatch.setitem(MIRRORS, "mnist", ("http://127.0.0.1:1/", base_url))   # port 1: refused
    monkeypatch.setitem(CHECKSUMS, "mnist", md5)
    out = download("mnist", root=tmp_path / "data", timeout=5, verbose=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES) and len(requests) == 4


def test_load_dataset_never_downloads(tmp_path, monkeypatch):
    import urllib.request

    def refuse(*args, **kwargs):
        raise AssertionError("load_dataset tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    from minidl.data import locations
    monkeypatch.setattr(locations, "SYSTEM_DIRS", (tmp_path / "system",))
    with pytest.raises(FileNotFoundError, match="minidl data download mnist"):
        load_dataset("mnist", root=tmp_path / "nothing")


def test_data_command_downloads_and_lists(server, tmp_path, monkeypatch, capsys):
    from minidl.data import locations
    from minidl.data.command import main
    www, base_url, _ = server
    _, md5 = _serve_small_mnist(www)
    monkeypatch.setitem(CHECKSUMS, "mnist", md5)
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(locations, "SYSTEM_DIRS", (tmp_path / "system",))
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "digits         bundled" in listed and "mnist          not found" in listed
    assert main(["download", "mnist", "--base-url", base_url]) == 0
    assert main(["list"]) == 0
    assert f"mnist          {tmp_path / 'xdg' / 'minidl' / 'mnist'}" in capsys.readouterr().out
    monkeypatch.setitem(CHECKSUMS, "mnist", {f: "0" * 32 for f in FILES})
    assert main(["download", "mnist", "--base-url", base_url, "--root", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err                     # the error went to stdout
    assert err.startswith("python -m minidl.data download: ") and "checksum mismatch" in err, err


def test_python_m_minidl_data_runs_as_a_program(server, tmp_path):
    """`python -m minidl.data list|download` (minidl/data/__main__.py), as the
    package's docstring shows it, in a fresh process: exit codes and streams."""
    import os
    import subprocess
    import sys

    www, base_url, _ = server
    _serve_small_mnist(www)                           # its checksums are not the real MNIST's
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"), MINIDL_DATA="",
               PYTHONPATH=os.pathsep.join(sys.path))

    def run(*args):
        return subprocess.run([sys.executable, "-m", "minidl.data", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    listed = run("list", "--root", str(tmp_path / "nothing"))
    assert listed.returncode == 0 and "digits         bundled with minidl" in listed.stdout, listed.stderr
    refused = run("download", "mnist", "--base-url", base_url, "--root", str(tmp_path / "r"))
    assert refused.returncode == 1
    assert "checksum mismatch" in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
