// Key Vault in RBAC mode holding one secret, `github-token`: the token used for GitHub
// workflow_dispatch notifications. The deployment never writes it; set it after `azd up` with
// `az keyvault secret set --vault-name <AZURE_KEY_VAULT_NAME> --name github-token --value <token>`.
param name string
param location string
param tags object

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enabledForDeployment: false
    enabledForTemplateDeployment: false
    enabledForDiskEncryption: false
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
