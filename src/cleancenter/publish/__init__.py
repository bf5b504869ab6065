"""Publishing: build what end users download and put it in the downloads folder.

``cleancenter publish cleaner`` builds the cleaner alone (a wheel holding only the
cleaner and the few shared modules it imports, and a single-file zipapp made with shiv
from that wheel and its dependencies), with the center's public key packaged as the
cleaner's pinned key. ``cleancenter publish definitions`` copies the newest signed
release there after verifying it. Both update ``SHA256SUMS``. The portal serves the
folder; it builds nothing itself.
"""


class PublishError(Exception):
    """Something to publish is missing, unverifiable or could not be built."""
