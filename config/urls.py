from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from backinstock import apis as backinstock_apis
from klaviyo_sync.admin_demand import demand_report_view
from shop import apis as shop_apis

urlpatterns = [
    path(
        "api/checkout-api/back-in-stock-subscription",
        backinstock_apis.CheckoutSubscribeApi.as_view(),
        name="checkout-back-in-stock-subscription",
    ),
    path(
        "api/shop-api/back-in-stock-subscription",
        backinstock_apis.ShopSubscribeApi.as_view(),
        name="shop-back-in-stock-subscription",
    ),
    path(
        "api/shop-api/back-in-stock-subscriptions",
        backinstock_apis.ShopSubscriptionsApi.as_view(),
        name="shop-back-in-stock-subscriptions",
    ),
    path("api/integration-api/stock", shop_apis.StockUpdateApi.as_view(), name="integration-stock"),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # The demand report sits among back in stock's admin pages (CONTRACT §9).
    path(
        "admin/backinstock/demand/",
        admin.site.admin_view(demand_report_view),
        name="backinstock-demand",
    ),
    path("admin/", admin.site.urls),
]
