"""End-to-end tests: the real ``trdnav serve`` driven by Debian's Chromium through Playwright."""
