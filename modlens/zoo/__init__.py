"""The embedded default: a family of small GPT-NeoX models pretrained here to graded quality."""

from modlens.zoo.build import Family, build_family, build_member, check_buildable, family_root, quality_table
from modlens.zoo.cache import CACHE_ENV, cache_root
from modlens.zoo.family import FamilyConfig, Member, members

__all__ = [
    "CACHE_ENV",
    "Family",
    "FamilyConfig",
    "Member",
    "build_family",
    "build_member",
    "cache_root",
    "check_buildable",
    "family_root",
    "members",
    "quality_table",
]
