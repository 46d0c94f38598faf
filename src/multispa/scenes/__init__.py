"""Scene readers: ScanNet (raw and export layouts), TAPVid-3D, and their shared types."""
