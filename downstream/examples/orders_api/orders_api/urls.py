from django.urls import path

from orders_api import apis

urlpatterns = [
    path("orders/", apis.OrderListApi.as_view()),
    path("orders/<str:number>/", apis.OrderDetailApi.as_view()),
    path("orders/<str:number>/approve", apis.OrderApproveApi.as_view()),
    path("healthz", apis.HealthApi.as_view()),
]
