from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # The REST API; its schema (/api/schema/), Swagger UI (/api/docs/) and Redoc (/api/redoc/).
    path("api/", include("predictor.api.urls")),
    path("", include("predictor.urls")),
]
