// Staging account for VHD page blobs, the source of each gallery image version.
//
// Why a second account, with shared key access left ON: creating an image version from a VHD
// (storageProfile.osDiskImage.source {storageAccountId, uri}) requires the caller to hold
// Microsoft.Storage/storageAccounts/listKeys/action on the source account: the gallery service reads
// the blob with the account key obtained on the caller's behalf, not with the caller's Entra token.
// With allowSharedKeyAccess false that read is refused, so this account must allow keys. Keeping it apart lets the host's
// account stay identity-only. Nothing here hands a key to anyone: the app writes blobs with its
// Entra token (Storage Blob Data Contributor on the container), no app setting holds a key, blobs
// are private, and tools default to Entra auth.
param name string
param location string
param tags object
param containerName string

@description('Shared key access stays on: the gallery reads a VHD source with the account key, which is why listKeys is required of the caller (https://learn.microsoft.com/azure/virtual-machines/image-version). No key is handed to anyone.')
resource vhdStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    allowSharedKeyAccess: true
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
  }

  resource blobService 'blobServices' = {
    name: 'default'
    resource container 'containers' = {
      name: containerName
      properties: { publicAccess: 'None' }
    }
  }
}

output name string = vhdStorage.name
output id string = vhdStorage.id
output containerName string = vhdStorage::blobService::container.name
