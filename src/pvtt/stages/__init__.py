"""Stage adapters: per clip (:mod:`.clip`), per product (:mod:`.product`), per pair (:mod:`.pair`)."""
