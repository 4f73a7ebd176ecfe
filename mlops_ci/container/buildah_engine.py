"""buildah builds and pushes without a daemon; containers then run with podman when it
is installed (GitLab runners often have no Docker)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from mlops_ci.container.base import (
    SERVING_PORT,
    BuildError,
    ContainerState,
    ContainerStats,
    Engine,
    ImageInfo,
    RunningContainer,
    write_log,
)
from mlops_ci.container.credentials import RegistryCredentials, basic_auth
from mlops_ci.errors import ExternalServiceError, UsageError


class BuildahEngine(Engine):
    """buildah with the vfs storage driver and chroot isolation: works unprivileged in
    CI containers. Containers run with podman when it is installed."""

    name = "buildah"

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.base = ["buildah", "--storage-driver", "vfs"]

    def describe(self) -> str:
        done = subprocess.run(["buildah", "--version"], capture_output=True, text=True, env=self.env)
        return done.stdout.strip() or "buildah"

    def build(self, context: Path, tag: str, *, log_path: Path | None = None) -> ImageInfo:
        done = subprocess.run(
            [
                *self.base,
                "bud",
                "--isolation",
                "chroot",
                "--layers",
                "-t",
                tag,
                "-f",
                str(context / "Dockerfile"),
                str(context),
            ],
            capture_output=True,
            text=True,
            env=self.env,
        )
        lines = (done.stdout + done.stderr).splitlines()
        write_log(log_path, lines)
        if done.returncode != 0:
            raise BuildError(
                f"buildah build failed: {(lines[-1] if lines else 'no output')[:300]}", "\n".join(lines[-30:])
            )
        info = json.loads(
            subprocess.run(
                [*self.base, "inspect", "--type", "image", tag],
                capture_output=True,
                text=True,
                env=self.env,
                check=True,
            ).stdout
        )
        image_id = info.get("FromImageID") or info.get("ImageID") or ""
        size = 0
        images = subprocess.run(
            [*self.base, "images", "--json", tag], capture_output=True, text=True, env=self.env
        )
        if images.returncode == 0 and images.stdout.strip():
            raw = json.loads(images.stdout)[0].get("size", 0) or 0
            size = raw if isinstance(raw, int) else (_parse_size(str(raw)) or 0)
        labels = (info.get("OCIv1") or {}).get("config", {}).get("Labels") or {}
        return ImageInfo(
            tag, f"sha256:{image_id}" if image_id and ":" not in image_id else image_id, size, labels
        )

    def push(self, ref: str, credentials: RegistryCredentials | None) -> str:
        with tempfile.TemporaryDirectory() as folder:
            command = [*self.base, "push", "--digestfile", f"{folder}/digest"]
            if credentials is not None:
                authfile = Path(folder) / "auth.json"
                authfile.write_text(
                    json.dumps({"auths": {credentials.registry: {"auth": basic_auth(credentials)}}})
                )
                authfile.chmod(0o600)
                command += ["--authfile", str(authfile)]
            if ref.startswith(("localhost", "127.0.0.1")):
                command += ["--tls-verify=false"]
            done = subprocess.run(
                [*command, ref, f"docker://{ref}"], capture_output=True, text=True, env=self.env
            )
            if done.returncode != 0:
                raise ExternalServiceError(
                    f"push of {ref} failed: {done.stderr.strip().splitlines()[-1][:300] if done.stderr.strip() else 'buildah push failed'}"
                )
            return Path(folder, "digest").read_text().strip()

    def run(self, image, *, port=0, cpus=None, memory=None, env=None, name=None) -> RunningContainer:
        if shutil.which("podman", path=self.env.get("PATH")) is None:
            raise UsageError(
                "running containers without a Docker engine needs podman; install it or set DOCKER_HOST"
            )
        host_port = port or _free_port()
        command = [
            "podman",
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--runtime",
            "runc",
            "run",
            "-d",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "-p",
            f"127.0.0.1:{host_port}:{SERVING_PORT}",
        ]
        if cpus:
            command += ["--cpus", str(cpus)]
        if memory:
            command += ["--memory", str(memory), "--memory-swap", str(memory)]
        if name:
            command += ["--name", name]
        for key in env or {}:
            command += ["--env", key]
        done = subprocess.run(
            [*command, image], capture_output=True, text=True, env={**self.env, **dict(env or {})}
        )
        if done.returncode != 0:
            raise ExternalServiceError(f"podman could not start {image}: {done.stderr.strip()[-300:]}")
        return PodmanContainer(self, done.stdout.strip(), host_port)

    def remove_image(self, ref: str) -> None:
        subprocess.run([*self.base, "rmi", "-f", ref], capture_output=True, env=self.env)


class PodmanContainer(RunningContainer):
    def _podman(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["podman", "--storage-driver", "vfs", *args], capture_output=True, text=True)

    def is_running(self) -> bool:
        done = self._podman("inspect", "-f", "{{.State.Running}}", self.id)
        return done.stdout.strip() == "true"

    def stats(self) -> ContainerStats:
        done = self._podman("stats", "--no-stream", "--format", "json", self.id)
        try:
            data = json.loads(done.stdout)[0]
            return ContainerStats(
                _parse_size(data.get("mem_usage", "").split("/")[0]),
                None,
                float(str(data.get("cpu_percent", "0")).rstrip("%")),
            )
        except (ValueError, IndexError, KeyError):
            return ContainerStats(None, None, None)

    def state(self) -> ContainerState:
        done = self._podman(
            "inspect", "-f", "{{.State.Running}} {{.State.ExitCode}} {{.State.OOMKilled}}", self.id
        )
        parts = done.stdout.split()
        if len(parts) != 3:
            return ContainerState(False, None, False)
        return ContainerState(
            parts[0] == "true", int(parts[1]) if parts[1].lstrip("-").isdigit() else None, parts[2] == "true"
        )

    def logs(self, *, tail: int = 200) -> str:
        done = self._podman("logs", "--tail", str(tail), self.id)
        return done.stdout + done.stderr

    def stop(self, *, timeout_s: float = 10.0) -> int | None:
        self._podman("stop", "-t", str(int(timeout_s)), self.id)
        code = self._podman("inspect", "-f", "{{.State.ExitCode}}", self.id).stdout.strip()
        self._podman("rm", "-f", self.id)
        return int(code) if code.isdigit() else None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _parse_size(text: str) -> int | None:
    text = text.strip()
    units = {"kB": 1e3, "KB": 1e3, "KiB": 1024, "MB": 1e6, "MiB": 1024**2, "GB": 1e9, "GiB": 1024**3, "B": 1}
    for unit, factor in units.items():
        if text.endswith(unit):
            try:
                return int(float(text[: -len(unit)]) * factor)
            except ValueError:
                return None
    return None
