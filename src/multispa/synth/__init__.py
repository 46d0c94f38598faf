"""Synthetic scenes written in the real ScanNet and TAPVid-3D on-disk formats."""
