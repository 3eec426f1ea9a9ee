from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from backinstock import apis as backinstock_apis
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
    path("admin/", admin.site.urls),
    path("", include("operations.urls")),
]
