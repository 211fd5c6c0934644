from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders_api"
    verbose_name = "Orders"
