"""Sharing what the center knows: STIX 2.1 bundles and MISP events.

Pure functions from catalog data to JSON: `gather` reads a sample or a family out of the
catalog into plain `SampleData`/`FamilyData`; `stix` and `misp` turn those into
documents. Every id and uuid is a UUIDv5 of the content it names, and every time comes
from the catalog, so exporting the same thing twice gives the same document.
"""

from __future__ import annotations

from cleancenter.share.gather import FamilyData, SampleData, load_family, load_sample
from cleancenter.share.misp import misp_family_event, misp_sample_event
from cleancenter.share.stix import stix_family_bundle, stix_sample_bundle

__all__ = ["FamilyData", "SampleData", "load_family", "load_sample", "misp_family_event",
           "misp_sample_event", "stix_family_bundle", "stix_sample_bundle"]
