from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import TemplateView

from backinstock import apis as backinstock_apis
from backinstock.graphql import storefront_graphql, storefront_sdl
from config.api import exceptions
from config.api.schema import RedocPage, SchemaApi, SwaggerUiPage
from klaviyo_sync.admin_demand import demand_report_view
from shop import apis as shop_apis

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
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
    path("api/storefront-api/graphql", storefront_graphql, name="storefront-graphql"),
    path("api/storefront-api/schema.graphql", storefront_sdl, name="storefront-sdl"),
    path("api/schema", SchemaApi.as_view(), name="schema"),
    path("api/docs", SwaggerUiPage.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc", RedocPage.as_view(url_name="schema"), name="redoc"),
    # Last under /api/: any other path, whatever the method, answers JSON (also with DEBUG on).
    re_path(r"^api/", exceptions.api_path_not_found, name="api-not-found"),
    # The demand report sits among back in stock's admin pages (CONTRACT §9).
    path(
        "admin/backinstock/demand/",
        admin.site.admin_view(demand_report_view),
        name="backinstock-demand",
    ),
    path("admin/", admin.site.urls),
    path("", include("operations.urls")),
]

handler400 = exceptions.bad_request
handler403 = exceptions.permission_denied
handler404 = exceptions.page_not_found
handler500 = exceptions.server_error
