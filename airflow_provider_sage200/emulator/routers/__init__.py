"""The emulator's routers: Sage ID (:mod:`.identity`), the Sage 200 API (:mod:`.api`), the control plane
(:mod:`.control`)."""
