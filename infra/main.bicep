// bosh-azure-stemcell-mirror: everything `azd up` creates, in one resource group.
// Subscription scope because azd creates the resource group itself.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; part of every resource name.')
param environmentName string

// Regions that offer Flex Consumption, as Microsoft's own azd quickstart for Functions on Flex
// Consumption (Azure-Samples/functions-quickstart-typescript-azd, infra/main.bicep) lists them, less
// its canary region. Microsoft's docs give no fixed list but a command that prints the current one:
// az functionapp list-flexconsumption-locations --query "[].name" -o tsv
// (learn.microsoft.com/azure/azure-functions/flex-consumption-how-to#view-currently-supported-regions).
@minLength(1)
@description('Region of all resources and of the gallery (the first replication target). Must offer Flex Consumption.')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the person running azd; gets Key Vault Secrets Officer to set github-token. Empty: no assignment.')
param principalId string = ''

// Mirror settings. Empty means "use the app's default" (DESIGN §4); the value is still set explicitly
// below so the portal shows what the app runs with.
@description('Comma-separated bosh.io Azure stemcell series to mirror.')
param stemcellSeries string = ''

@description('NCRONTAB (six fields) of the mirror schedule.')
param schedule string = ''

@description('Replication targets, "region=replicas,…". Empty: the deployment region with one replica.')
param galleryTargetRegions string = ''

@description('Storage type of gallery replicas: Standard_LRS, Standard_ZRS or Premium_LRS. Empty: Standard_LRS.')
param galleryStorageAccountType string = ''

@description('Newest N image versions kept per image definition; 0 keeps all. Empty: 0.')
param retainVersions string = ''

@description('How many newest bosh.io versions the schedule keeps present. Empty: 1.')
param backfillVersions string = ''

@description('GitHub owner for workflow_dispatch after each published version. Empty: notifications off.')
param notifyGithubOwner string = ''

@description('GitHub repository (with notifyGithubOwner).')
param notifyGithubRepo string = ''

@description('Workflow file name or id (with notifyGithubOwner).')
param notifyGithubWorkflow string = ''

@description('Git ref the workflow runs on (with notifyGithubOwner). Empty: main.')
param notifyGithubRef string = ''

@description('E-mail address for alerts (schedule stopped, job failed). Empty: alerts without receivers.')
param alertEmail string = ''

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }

// The container the app stages VHD page blobs in (BASM_STORAGE_CONTAINER).
var vhdContainerName = 'stemcell'
// Queue and table names are part of the app's contract (DESIGN §1, §3).
var requestQueueName = 'stemcell-mirror-requests'
var jobsTableName = 'stemcellmirrorjobs'

var mirror = {
  series: empty(stemcellSeries) ? 'bosh-azure-hyperv-ubuntu-jammy-go_agent' : stemcellSeries
  schedule: empty(schedule) ? '0 0 */6 * * *' : schedule
  targetRegions: empty(galleryTargetRegions) ? '${location}=1' : galleryTargetRegions
  storageAccountType: empty(galleryStorageAccountType) ? 'Standard_LRS' : galleryStorageAccountType
  retainVersions: empty(retainVersions) ? '0' : retainVersions
  backfillVersions: empty(backfillVersions) ? '1' : backfillVersions
}

var notify = {
  owner: notifyGithubOwner
  repo: notifyGithubRepo
  workflow: notifyGithubWorkflow
  ref: empty(notifyGithubRef) ? 'main' : notifyGithubRef
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourceGroup}${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentity}${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.logAnalytics}${resourceToken}'
    appInsightsName: '${abbrs.appInsights}${resourceToken}'
    location: location
    tags: tags
  }
}

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    appInsightsName: monitoring.outputs.appInsightsName
    location: location
    tags: tags
    alertEmail: alertEmail
  }
}

module hostStorage 'app/host-storage.bicep' = {
  name: 'hostStorage'
  scope: rg
  params: {
    name: '${abbrs.storageHost}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: '${abbrs.deploymentContainer}${resourceToken}'
    queueNames: [requestQueueName, '${requestQueueName}-poison']
    tableName: jobsTableName
  }
}

module vhdStorage 'app/vhd-storage.bicep' = {
  name: 'vhdStorage'
  scope: rg
  params: {
    name: '${abbrs.storageVhd}${resourceToken}'
    location: location
    tags: tags
    containerName: vhdContainerName
  }
}

module gallery 'app/gallery.bicep' = {
  name: 'gallery'
  scope: rg
  params: {
    name: '${abbrs.gallery}${resourceToken}'
    location: location
    tags: tags
  }
}

module vault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVault}${resourceToken}'
    location: location
    tags: tags
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    deployerPrincipalId: principalId
    hostStorageName: hostStorage.outputs.name
    requestQueueNames: hostStorage.outputs.queueNames
    jobsTableName: hostStorage.outputs.tableName
    vhdStorageName: vhdStorage.outputs.name
    vhdContainerName: vhdStorage.outputs.containerName
    galleryName: gallery.outputs.name
    keyVaultName: vault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

module app 'app/function.bicep' = {
  name: 'function'
  scope: rg
  // The app starts as soon as it exists; without its roles the host cannot reach storage.
  dependsOn: [rbac]
  params: {
    name: '${abbrs.functionApp}${resourceToken}'
    planName: '${abbrs.servicePlan}${resourceToken}'
    location: location
    tags: union(tags, { 'azd-service-name': 'api' })
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    hostBlobEndpoint: hostStorage.outputs.blobEndpoint
    hostQueueEndpoint: hostStorage.outputs.queueEndpoint
    hostTableEndpoint: hostStorage.outputs.tableEndpoint
    deploymentContainerName: hostStorage.outputs.deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.connectionString
    vhdStorageName: vhdStorage.outputs.name
    vhdStorageId: vhdStorage.outputs.id
    vhdContainerName: vhdStorage.outputs.containerName
    galleryName: gallery.outputs.name
    keyVaultUri: vault.outputs.uri
    mirror: mirror
    notify: notify
  }
}

// azd stores these in .azure/<env>/.env and prints the endpoint after `azd up`.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.name
output FUNCTION_APP_URL string = app.outputs.url
output AZURE_GALLERY_NAME string = gallery.outputs.name
output AZURE_KEY_VAULT_NAME string = vault.outputs.name
output AZURE_KEY_VAULT_URL string = vault.outputs.uri
output AZURE_VHD_STORAGE_ACCOUNT_NAME string = vhdStorage.outputs.name
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
