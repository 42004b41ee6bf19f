"""HTTP query APIs, one router per wire API."""
