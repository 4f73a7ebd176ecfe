import subprocess

import pytest

from mlops_ci.errors import UsageError
from mlops_ci.gitinfo import read_git_info, strip_credentials
from mlops_ci.tracking.fingerprint import code_files, fingerprint_code, fingerprint_data
from tests.helpers import require_module


def test_file_fingerprint_with_csv_schema(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,c\n1,2.5,x\n2,?,y\n")
    fp = fingerprint_data(path, project_dir=tmp_path)
    assert fp.path == "d.csv" and fp.rows == 2
    assert fp.columns == {"a": "int", "b": "float", "c": "string"}
    path.write_text("a,b,c\n1,2.5,x\n3,?,y\n")  # one byte changed
    assert fingerprint_data(path, project_dir=tmp_path).sha256 != fp.sha256


def test_folder_fingerprint_covers_names_and_contents(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.txt").write_text("1")
    first = fingerprint_data(folder, project_dir=tmp_path)
    (folder / "a.txt").rename(folder / "b.txt")
    assert fingerprint_data(folder, project_dir=tmp_path).sha256 != first.sha256
    assert first.files == 1


def test_parquet_rows_and_schema(tmp_path):
    pyarrow = require_module("pyarrow", install="pip install pyarrow (MLflow's dependency)")
    import pyarrow.parquet as pq

    pq.write_table(pyarrow.table({"x": [1, 2, 3], "y": ["a", "b", "c"]}), tmp_path / "t.parquet")
    fp = fingerprint_data(tmp_path / "t.parquet", project_dir=tmp_path)
    assert fp.rows == 3 and fp.columns == {"x": "int64", "y": "string"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "data path missing.csv does not exist"),
        (b"", "is empty"),
        (b"\xff\xfe\x00bad", "is not UTF-8"),
    ],
)
def test_bad_data_is_a_usage_error(tmp_path, content, message):
    path = tmp_path / "missing.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        fingerprint_data(path, project_dir=tmp_path)


def test_code_files_follow_git_and_exclusions(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / ".gitignore").write_text("ignored.py\n")
    for name in ("train.py", "ignored.py", "data.csv", "util.py"):
        (tmp_path / name).write_text(name)
    (tmp_path / ".mlops-ci").mkdir()
    (tmp_path / ".mlops-ci" / "train.json").write_text("{}")
    files = code_files(tmp_path, include=[], exclude=[tmp_path / "data.csv", tmp_path / ".mlops-ci"])
    assert sorted(f.name for f in files) == [".gitignore", "train.py", "util.py"]
    narrowed = code_files(tmp_path, include=["train*"], exclude=[])
    assert [f.name for f in narrowed] == ["train.py"]
    before = fingerprint_code(tmp_path, files)
    (tmp_path / "util.py").write_text("changed")
    assert fingerprint_code(tmp_path, files) != before


def test_code_files_without_git_skip_caches(tmp_path):
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_text("")
    (tmp_path / "train.py").write_text("")
    assert [f.name for f in code_files(tmp_path, include=[], exclude=[])] == ["train.py"]


def test_git_info_and_credentials(tmp_path):
    assert read_git_info(tmp_path).commit is None
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    subprocess.run(
        ["git", "remote", "add", "origin", "https://x-access-token:s3cret@github.com/o/r.git"],
        cwd=tmp_path,
        check=True,
    )
    (tmp_path / "f").write_text("1")
    subprocess.run(["git", "add", "f"], cwd=tmp_path, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "subject\n\nbody"],
        cwd=tmp_path,
        check=True,
    )
    info = read_git_info(tmp_path)
    assert info.remote == "https://github.com/o/r.git"
    assert info.message == "subject\n\nbody" and info.dirty is False and info.branch == "main"
    (tmp_path / "f").write_text("2")
    assert read_git_info(tmp_path).dirty is True
    assert strip_credentials("git@github.com:o/r.git") == "git@github.com:o/r.git"
