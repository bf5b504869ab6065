"""Notify: tell each ISP which of its addresses attacked the decoys, and the funnel after."""
