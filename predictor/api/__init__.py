"""REST API (DRF): serializers, views and URLs. Built by the web issue."""
