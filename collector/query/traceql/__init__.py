"""A TraceQL subset: one spanset filter `{ ... }` over span, resource and unscoped attributes and intrinsics."""
