"""Resources: where data lives (a local folder or S3) and how to reach S3."""


from typing import Any

from dagster import ConfigurableResource, ResourceDependency
from dagster_aws.s3 import S3Resource

from openvid_assets import settings
from openvid_assets.store import TableStore


class OpenVidStore(ConfigurableResource):
    """The data root: every shard table, clip and export is written under it."""

    data_root: str = settings.DEFAULT_DATA_ROOT
    s3: ResourceDependency[S3Resource]

    def s3_client(self) -> Any:
        return self.s3.get_client()

    def tables(self) -> TableStore:
        return TableStore(self.data_root, s3_client_factory=self.s3_client)


def default_resources(data_root: str | None = None) -> dict[str, Any]:
    # S3Resource with no endpoint lets boto3 read AWS_ENDPOINT_URL and credentials from the env.
    s3 = S3Resource()
    return {"s3": s3, "store": OpenVidStore(data_root=data_root or settings.data_root(), s3=s3)}
