"""The Python client of a mef3lab server (`Mef3Client`) and where its credentials come from."""

from .credentials import channel_for
from .mef3client import Mef3Client

__all__ = ["Mef3Client", "channel_for"]
