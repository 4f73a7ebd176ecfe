"""Wheels for the build context, so that building the image needs no network.

The serving stack is pinned to the versions running here (the ONNX Runtime that checked
parity is the one in the image) and downloaded for the *target* Python and platform.
mlops-ci itself goes in as a wheel made from the running package (no build backend, no
network): installed with --no-deps, only ``mlops_ci.serving`` is imported in the image.
"""

from __future__ import annotations

import base64
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from mlops_ci.errors import ExternalServiceError, UsageError

# What the server imports, and nothing else: onnxruntime's own dependencies (protobuf,
# flatbuffers, sympy, ...) serve its tooling, not inference, so everything installs
# with --no-deps.
SERVE_DISTRIBUTIONS = ("onnxruntime", "numpy", "httptools", "orjson", "uvloop")
BOOTSTRAP = ("pip",)
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Wheelset:
    folder: Path
    requirements: tuple[str, ...]  # name==version, installed in the image
    self_wheel: str  # file name of the mlops-ci wheel
    pip_wheel: str


def default_platform() -> str:
    machine = platform.machine().lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    return f"manylinux_2_28_{arch}"


def compatible_platforms(tag: str) -> list[str]:
    """pip matches --platform literally: spell out the older manylinux tags a glibc that
    runs ``manylinux_2_<N>`` also runs (wheels often carry only manylinux2014 tags)."""
    match = re.match(r"^manylinux_2_(\d+)_(\w+)$", tag)
    if not match:
        return [tag]
    newest, arch = int(match.group(1)), match.group(2)
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(newest, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags += [f"{name}_{arch}" for minor, name in legacy.items() if minor <= newest]
    return tags


def pinned_requirements(names: tuple[str, ...] = SERVE_DISTRIBUTIONS) -> tuple[str, ...]:
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            if name == "uvloop":
                continue  # optional: the server falls back to asyncio's loop
            raise UsageError(
                f"{name} is not installed here; install mlops-ci[serve] to build serving images"
            ) from None
    return tuple(pins)


def cache_dir(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    if env.get("MLOPS_CI_CACHE_DIR"):
        return Path(env["MLOPS_CI_CACHE_DIR"])
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlops-ci"


def vendor_wheels(
    folder: Path,
    *,
    python_version: str,
    platform_tag: str,
    wheelhouse: Path | None = None,
    timeout_s: float = 600,
    cache: Path | None = None,
) -> Wheelset:
    """Download the pinned wheels into ``folder`` (through a cache keyed by the pins, the
    target Python and platform, so a second build downloads nothing)."""
    folder.mkdir(parents=True, exist_ok=True)
    requirements = pinned_requirements()
    pip_pin = f"pip=={metadata.version('pip')}" if _has("pip") else "pip"
    key = hashlib.sha256(
        "\n".join([python_version, platform_tag, *requirements, pip_pin]).encode()
    ).hexdigest()[:16]
    cached = (cache or cache_dir()) / "wheels" / key
    if (cached / ".complete").is_file():
        for wheel in cached.glob("*.whl"):
            shutil.copy2(wheel, folder / wheel.name)
    else:
        _download(folder, requirements, pip_pin, python_version, platform_tag, wheelhouse, timeout_s)
        try:
            cached.mkdir(parents=True, exist_ok=True)
            for wheel in folder.glob("*.whl"):
                shutil.copy2(wheel, cached / wheel.name)
            (cached / ".complete").write_text("\n".join(requirements) + "\n")
        except OSError:
            pass  # a read-only home: no cache, no harm
    pip_wheel = next((p.name for p in folder.glob("pip-*.whl")), "")
    self_wheel = build_self_wheel(folder)
    return Wheelset(folder, requirements, self_wheel, pip_wheel)


def _download(
    folder: Path,
    requirements: tuple[str, ...],
    pip_pin: str,
    python_version: str,
    platform_tag: str,
    wheelhouse: Path | None,
    timeout_s: float,
) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        "--abi",
        "cp" + python_version.replace(".", ""),
        "--abi",
        "abi3",
        "--abi",
        "none",
        *[arg for tag in compatible_platforms(platform_tag) for arg in ("--platform", tag)],
        "--dest",
        str(folder),
        "--disable-pip-version-check",
        "--quiet",
    ]
    if wheelhouse is not None:
        command += ["--no-index", "--find-links", str(wheelhouse)]
    command += [*requirements, pip_pin]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise ExternalServiceError(
            f"pip download of the serving wheels took over {timeout_s:.0f} s; check the package index"
        ) from None
    if done.returncode != 0:
        lines = [
            line for line in done.stderr.splitlines() if line.startswith("ERROR")
        ] or done.stderr.splitlines()[-1:]
        where = f"wheelhouse {wheelhouse}" if wheelhouse else "the package index"
        raise ExternalServiceError(
            f"cannot download the serving wheels for Python {python_version} on {platform_tag} from {where}: "
            f"{(lines[0] if lines else 'pip failed')[:300]}"
        )


def build_self_wheel(folder: Path) -> str:
    """A wheel of the running mlops_ci package, byte-for-byte reproducible (sorted
    entries, fixed timestamps). Dependencies are not declared: it installs with --no-deps."""
    import mlops_ci

    version = mlops_ci.__version__
    package = Path(mlops_ci.__file__).parent
    dist_info = f"mlops_ci-{version}.dist-info"
    name = f"mlops_ci-{version}-py3-none-any.whl"
    entries: list[tuple[str, bytes]] = []
    for path in sorted(package.rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
            continue
        entries.append((f"mlops_ci/{path.relative_to(package).as_posix()}", path.read_bytes()))
    entries.append(
        (
            f"{dist_info}/METADATA",
            f"Metadata-Version: 2.1\nName: mlops-ci\nVersion: {version}\nSummary: mlops-ci (serving image build)\n".encode(),
        )
    )
    entries.append(
        (
            f"{dist_info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: mlops-ci\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
    )
    record_lines = [f"{arcname},sha256={_digest(data)},{len(data)}" for arcname, data in entries]
    record_lines.append(f"{dist_info}/RECORD,,")
    entries.append((f"{dist_info}/RECORD", ("\n".join(record_lines) + "\n").encode()))
    target = folder / name
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for arcname, data in entries:
            info = zipfile.ZipInfo(arcname, date_time=FIXED_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    os.chmod(target, 0o644)
    return name


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _has(name: str) -> bool:
    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False
