// The one identity the app runs as: host storage, VHD staging, gallery, Key Vault, telemetry.
// User-assigned so role assignments exist before the function app starts.
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
