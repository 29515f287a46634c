"""Size caps shared by every reader: a file declaring more is refused before anything is allocated."""

MAX_ELEMENTS = 1 << 34  # 16 Gi elements per tensor (SECURITY.md)
