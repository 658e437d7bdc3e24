from django.contrib.auth import views as auth_views
from django.urls import path

from predictor import views

app_name = "predictor"

urlpatterns = [
    path("", views.index, name="index"),
    path("forecast/", views.forecast, name="forecast"),
    path("forecast/<uuid:pk>.csv", views.forecast_csv, name="forecast_csv"),
    path("evaluation/", views.evaluation, name="evaluation"),
    path("training/", views.training_list, name="training_list"),
    path("training/new/", views.training_new, name="training_new"),
    path("training/<uuid:pk>/", views.training_detail, name="training_detail"),
    path("training/<uuid:pk>/progress.json", views.training_progress, name="training_progress"),
    path("training/<uuid:pk>/cancel/", views.training_cancel, name="training_cancel"),
    path("sweeps/", views.sweeps, name="sweep_list"),
    path("sweeps/new/", views.sweep_new, name="sweep_new"),
    path("sweeps/<uuid:pk>/", views.sweep_detail, name="sweep_detail"),
    path("sweeps/<uuid:pk>/progress.json", views.sweep_progress_json, name="sweep_progress"),
    path("sweeps/<uuid:pk>/cancel/", views.sweep_cancel_view, name="sweep_cancel"),
    path("sweeps/<uuid:pk>/resume/", views.sweep_resume_view, name="sweep_resume"),
    path("paper/<uuid:pk>/", views.paper_detail, name="paper_detail"),
    path("paper/<uuid:pk>/start/", views.paper_start_view, name="paper_start"),
    path("paper/<uuid:pk>/stop/", views.paper_stop_view, name="paper_stop"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="predictor/login.html", next_page="predictor:training_list"
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="predictor:index"), name="logout"),
]
