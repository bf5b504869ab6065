"""The ISP side: lease logs, correlation and mail, run on the ISP's own machine."""
