#!/bin/sh
# Deletes the two custom role definitions of one azd environment. Role definitions are not resources
# of the resource group: they belong to the subscription and outlive `azd down`. azd runs this after
# `azd down` (azure.yaml, postdown hook); by hand, with the environment's values:
#   eval "$(azd env get-values)" && scripts/delete-custom-roles.sh
set -eu
: "${AZURE_SUBSCRIPTION_ID:?set AZURE_SUBSCRIPTION_ID (eval \"\$(azd env get-values)\")}"
: "${AZURE_RESOURCE_GROUP:?set AZURE_RESOURCE_GROUP (eval \"\$(azd env get-values)\")}"
if ! command -v az >/dev/null 2>&1; then
  echo "custom roles: install and sign in to the Azure CLI (az) to delete them (README: Tear down)" >&2
  exit 1
fi
subscription="/subscriptions/$AZURE_SUBSCRIPTION_ID"
group="$subscription/resourceGroups/$AZURE_RESOURCE_GROUP"
# Ours: named "Stemcell mirror …" (infra/app/rbac.bicep) and assignable in this environment's group
# only. Listed and deleted at subscription scope: the group itself is gone after `azd down`.
ids=$(az role definition list --subscription "$AZURE_SUBSCRIPTION_ID" --custom-role-only true \
  --query "[?starts_with(roleName, 'Stemcell mirror ') && contains(assignableScopes, '$group')].name" \
  -o tsv)
for id in $ids; do
  echo "deleting custom role definition $id" >&2
  az role definition delete --subscription "$AZURE_SUBSCRIPTION_ID" --scope "$subscription" --name "$id"
done
echo "custom roles of $AZURE_RESOURCE_GROUP: $(echo "$ids" | wc -w | tr -d ' ') deleted" >&2
