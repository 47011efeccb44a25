"""Uploadable analysis bundles (spec module ``artifact_packager``).

``package_analysis_bundle`` writes the spec's flat bundle that the in-container modules
``spikebatch.entrypoints.workspace`` and ``.sorting`` read; see
``spikebatch.adapters.files.analysis_bundle``.
"""

from .adapters.files.analysis_bundle import BundleInputError, SupportedFormat, package_analysis_bundle

__all__ = ["BundleInputError", "SupportedFormat", "package_analysis_bundle"]
