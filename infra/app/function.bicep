// The function app on the Flex Consumption plan (Linux, Node 22), running as the user-assigned
// identity for everything: host storage, deployment package, VHD staging, gallery, Key Vault,
// telemetry. No app setting holds a key or a connection string with a secret.
param name string
param planName string
param location string
param tags object
param identityId string
param identityClientId string
param hostBlobEndpoint string
param hostQueueEndpoint string
param hostTableEndpoint string
param deploymentContainerName string
param appInsightsConnectionString string
param vhdStorageName string
param vhdStorageId string
param vhdContainerName string
param galleryName string
param keyVaultUri string
@description('Mirror settings resolved in main.bicep: series, schedule, targetRegions, storageAccountType, retainVersions, backfillVersions.')
param mirror object
@description('GitHub workflow_dispatch target: owner (empty = off), repo, workflow, ref.')
param notify object

@description('Memory per instance. A transfer holds bounded buffers, but gunzip, tar and parallel Put Page need headroom.')
@allowed([2048, 4096])
param instanceMemoryMB int = 2048

// Sized for this workload: host.json takes one queue message per instance at a time (batchSize 1),
// so concurrent transfers = worker instances, each streaming one stemcell into its own page blob.
// Flex scales per function: the HTTP group, mirrorWorker, mirrorPoison and mirrorSchedule each
// need an instance while busy. 6 = those four plus two more workers (three series, or a series and
// a back-fill, transferring at once). Flex Consumption accepts 1 to 1000.
@description('Upper bound of instances, all functions together. Raise it to mirror more series at once.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 6

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      // The portal's function test pane and log stream call the app from the portal's origin.
      cors: {
        allowedOrigins: ['https://portal.azure.com']
      }
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostBlobEndpoint}${deploymentContainerName}'
          authentication: {
            // Identity-based deployment storage: no storage key in the site's configuration.
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      // Node 22: supported on Flex Consumption until 2027-04-30 (Node 20 support ended 2026-04-30).
      // 22.13 or later, where require() of an ES module (got 14) neither fails nor warns.
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
}

// azd deploys with an Entra token; publishing with a user name and password stays off.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: { allow: false }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: { allow: false }
}

// Host and runtime: identity-based AzureWebJobsStorage and Entra-authenticated telemetry.
// (Flex Consumption takes the runtime from functionAppConfig; FUNCTIONS_WORKER_RUNTIME and
// FUNCTIONS_EXTENSION_VERSION must not be set.)
var hostSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: hostBlobEndpoint
  AzureWebJobsStorage__queueServiceUri: hostQueueEndpoint
  AzureWebJobsStorage__tableServiceUri: hostTableEndpoint
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // The Node worker's command line: V8 options a transfer needs (src/lib/v8-options.ts says why).
  languageWorkers__node__arguments: '--initial-old-space-size=128'
}

// The app's own settings (DESIGN §4), read by src/lib/config/config.ts under exactly these names.
var mirrorSettings = {
  BASM_STEMCELL_SERIES: mirror.series
  BASM_SCHEDULE: mirror.schedule
  AZURE_SUBSCRIPTION_ID: subscription().subscriptionId
  AZURE_RESOURCE_GROUP: resourceGroup().name
  AZURE_REGION: location
  AZURE_GALLERY_NAME: galleryName
  AZURE_MANAGED_IDENTITY_ID: identityClientId
  AZURE_STORAGE_ACCOUNT_NAME: vhdStorageName
  AZURE_STORAGE_ACCOUNT_ID: vhdStorageId
  BASM_STORAGE_CONTAINER: vhdContainerName
  BASM_GALLERY_TARGET_REGIONS: mirror.targetRegions
  BASM_GALLERY_STORAGE_ACCOUNT_TYPE: mirror.storageAccountType
  BASM_RETAIN_VERSIONS: mirror.retainVersions
  BASM_BACKFILL_VERSIONS: mirror.backfillVersions
}

// Notifications only when an owner is given: with AZURE_KEY_VAULT_URL set the app requires owner,
// repo, workflow and ref, and refuses to start without them.
var notifySettings = {
  AZURE_KEY_VAULT_URL: keyVaultUri
  BASM_NOTIFY_GITHUB_OWNER: notify.owner
  BASM_NOTIFY_GITHUB_REPO: notify.repo
  BASM_NOTIFY_GITHUB_WORKFLOW: notify.workflow
  BASM_NOTIFY_GITHUB_REF: notify.ref
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: union(hostSettings, mirrorSettings, empty(notify.owner) ? {} : notifySettings)
}

output name string = functionApp.name
output url string = 'https://${functionApp.properties.defaultHostName}'
