from django.contrib import admin
from django.urls import include, path

from cryptooracle.health import health_view

urlpatterns = [
    path("admin/", admin.site.urls),
    # Answered by HealthCheckMiddleware first, whatever the Host; here for reverse() and docs.
    path("health/", health_view, name="health"),
    # The REST API; its schema (/api/schema/), Swagger UI (/api/docs/) and Redoc (/api/redoc/).
    path("api/", include("predictor.api.urls")),
    path("", include("predictor.urls")),
]
