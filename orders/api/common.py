"""What the order API's views share: the OpenAPI words of their answers, who asks."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from core.api import Detail
from orders.jobs import INLINE_LIMIT

ORDER_ID = OpenApiParameter("order_id", OpenApiTypes.STR, OpenApiParameter.PATH)
UNAUTHORIZED = OpenApiResponse(Detail, description="No or bad token.")
FORBIDDEN = OpenApiResponse(Detail, description="The token's user lacks the permission.")
NOT_FOUND = OpenApiResponse(Detail, description="No such order.")
JOB_ANSWER = (
    f"The selection is frozen into a job: up to {INLINE_LIMIT:,} orders it runs at once, "
    "and `count` and `skipped` are its final counts; a larger one runs in the background, "
    "`count` is the orders selected, `skipped` 0, and `job.url` tells its progress."
)


def actor(request) -> str:
    return request.user.get_username()
