"""The built-in analysis workspace: a folder of JSON, bytes and NumPy arrays with the
method names of SpikeLab's AnalysisWorkspace (store, get, list_keys, ...). A SpikeLab
AnalysisWorkspace works wherever this one does."""

from .adapters.workspaces.directory import DirectoryWorkspace  # noqa: F401 - re-exported public API

__all__ = ["DirectoryWorkspace"]
