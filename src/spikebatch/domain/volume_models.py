"""Volumes of a Job: a secret, a PVC or scratch space (emptyDir), and the rule that
entries of one name are mounts of one pod volume."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from pydantic import field_validator, model_validator

from .model_base import StrictModel as _Model
from .model_fields import check_dns_subdomain
from .naming import is_rfc1123_label
from .quantity import memory_quantity


class VolumeMountSpec(_Model):
    """Pod volume + mount target information (a secret, a PVC or an emptyDir)."""

    name: str
    mount_path: str
    sub_path: Optional[str] = None
    secret_name: Optional[str] = None
    pvc_name: Optional[str] = None
    #: Read-only unless said otherwise; an empty_dir volume is writable unless said otherwise.
    read_only: bool = True
    #: Scratch space that lives as long as the pod (an ``emptyDir`` volume).
    empty_dir: bool = False
    #: empty_dir only: the most it may hold (``sizeLimit``, e.g. "10Gi"); the kubelet
    #: evicts a pod whose scratch grows past it. None: bounded only by the node's disk.
    size_limit: Optional[str] = None

    @model_validator(mode="before")
    @classmethod
    def _scratch_is_writable(cls, data: Any) -> Any:
        # Scratch nobody can write is of no use: an empty_dir volume that does not set
        # read_only is mounted read-write.
        if isinstance(data, dict) and data.get("empty_dir") is True and "read_only" not in data:
            return {**data, "read_only": False}
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not is_rfc1123_label(value):
            raise ValueError(f"volume name {value!r} must be an RFC 1123 label (a-z, 0-9, '-')")
        return value

    @field_validator("mount_path")
    @classmethod
    def _mount_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"mount_path {value!r} must be an absolute path")
        return value

    @field_validator("secret_name")
    @classmethod
    def _secret_name(cls, value: Optional[str]) -> Optional[str]:
        return None if value is None else check_dns_subdomain(value, "secret name")

    @field_validator("pvc_name")
    @classmethod
    def _pvc_name(cls, value: Optional[str]) -> Optional[str]:
        return None if value is None else check_dns_subdomain(value, "PVC name")

    @field_validator("size_limit", mode="before")
    @classmethod
    def _size_limit(cls, value: Any) -> Optional[str]:
        if value is None:
            return None
        try:
            return memory_quantity(str(value))
        except ValueError as exc:
            raise ValueError(f"size_limit: {exc}") from None

    @model_validator(mode="after")
    def _one_source(self) -> "VolumeMountSpec":
        sources = [self.secret_name is not None, self.pvc_name is not None, self.empty_dir]
        if sum(sources) != 1:
            raise ValueError(
                f"volume {self.name!r} needs exactly one of secret_name, pvc_name or empty_dir: true"
            )
        if self.size_limit is not None and not self.empty_dir:
            raise ValueError(f"volume {self.name!r}: size_limit applies to empty_dir volumes only")
        if self.empty_dir and self.read_only:
            raise ValueError(
                f"volume {self.name!r} is empty_dir scratch space mounted read-only, so nothing "
                "could ever be in it; drop read_only: true"
            )
        return self


def _source(volume: "VolumeMountSpec") -> tuple:
    return (volume.secret_name, volume.pvc_name, volume.empty_dir, volume.size_limit)


def check_volume_sources(volumes: List["VolumeMountSpec"], where: str) -> List["VolumeMountSpec"]:
    """Entries of one name are mounts of one pod volume (the reference's nrp profile
    mounts two files of one secret with ``sub_path``): they must name the same source
    and mount at different paths."""
    first: Dict[str, VolumeMountSpec] = {}
    mounted: set = set()
    for volume in volumes:
        seen = first.setdefault(volume.name, volume)
        if _source(seen) != _source(volume):
            raise ValueError(
                f"{where}: entries named {volume.name!r} mount different sources; entries of one "
                "name are mounts of one volume, so give the other source another name"
            )
        if (volume.name, volume.mount_path) in mounted:
            raise ValueError(
                f"{where}: volume {volume.name!r} is mounted at {volume.mount_path!r} twice; remove one entry"
            )
        mounted.add((volume.name, volume.mount_path))
    return volumes
