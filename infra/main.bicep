// Genesys conversation events on Azure: `azd up` provisions everything the function app needs.
// See docs/deploy.md for the parameters and what gets created, docs/operations.md for running it.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name: names the resource group and seeds the resource names.')
param environmentName string

@minLength(1)
@description('Region for everything (one that offers Flex Consumption).')
@metadata({ azd: { type: 'location' } })
param location string

@description('The operator (azd passes the signed-in user): roles for the ops CLI. Empty: none.')
param principalId string = ''
@allowed(['User', 'ServicePrincipal', 'Group'])
param principalType string = 'User'

@description('The hub the webhook writes to and the transform reads.')
param eventHubName string = 'genesys-events'
@minValue(1)
@maxValue(32)
@description('Partitions: fixed at creation; at most one consumer instance per partition.')
param partitionCount int = 8
@description('The transform\'s consumer group (its own, so tools and other readers get theirs).')
param consumerGroupName string = 'transform'

param stateTableName string = 'conversationstate'
param recordsContainer string = 'conversations'
param deadletterContainer string = 'deadletter'
param gracePeriodSeconds int = 60
param idleTimeoutSeconds int = 14400
param stateRetentionDays int = 7
@description('INGEST_MEDIA_TYPES: comma-separated media types whose conversations are kept (e.g. voice,chat); empty: all.')
param ingestMediaTypes string = ''
@description('NCRONTAB of the transform timer: finalization latency against execution cost (docs/deploy.md).')
param timerSchedule string = '*/30 * * * * *'

@allowed([2048, 4096])
param instanceMemoryMB int = 2048
param maximumInstanceCount int = 40
param httpPerInstanceConcurrency int = 16

@secure()
@description('HMAC secret for X-Signature-256 (stored in Key Vault). Empty: no signature.')
param webhookSecret string = ''
@minValue(1)
@description('Days until the webhook secret is flagged for rotation, counted from the provision that set it.')
param webhookSecretRotationDays int = 365

@description('E-mail for alert notifications. Empty: alerts fire without notifying.')
param alertEmail string = ''
param lagAlertThreshold int = 10000
param errorRateAlertPercent string = '0.1'

// ---- private networking and hardening
@description('Storage, Event Hubs and Key Vault off the internet: private endpoints, the app integrated in a VNet.')
param vnetEnabled bool = true
@description('With vnetEnabled: the VNet, the app\'s integration subnet, the private endpoints\' subnet.')
param vnetAddressPrefix string = '10.0.0.0/16'
param appSubnetPrefix string = '10.0.0.0/24'
param privateEndpointSubnetPrefix string = '10.0.1.0/24'
@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GRS', 'Standard_GZRS', 'Standard_RAGRS', 'Standard_RAGZRS'])
@description('Redundancy of the data account (state, records, dead letters): ZRS where the region has availability zones.')
param dataStorageSku string = 'Standard_ZRS'
@minValue(7)
@maxValue(90)
@description('Days a deleted vault or secret stays recoverable; fixed when the vault is created.')
param keyVaultRetentionDays int = 90
@description('Storage read and write logs to Log Analytics (deletes are always logged): one line per request.')
param verboseStorageLogs bool = false

// ---- personal data
@allowed(['keep', 'hash', 'drop'])
@description('Phone numbers in records and state: as they arrived, keyed HMAC-SHA-256, or null.')
param recordPii string = 'keep'
@secure()
@description('The HMAC key of recordPii=hash. azd generates it once per environment and keeps it; without azd, pass 64 random characters.')
@metadata({ azd: { type: 'generate', config: { length: 64, noSpecial: true } } })
param recordPiiKey string
@minValue(1)
@description('Dead letters (raw payloads, phone numbers as they arrived) are deleted this many days after they were written.')
param deadletterRetentionDays int = 30

@description('Now, to date the webhook secret\'s rotation (only a parameter default may read the clock).')
param deployedAt string = utcNow()

var abbreviations = {
  resourceGroup: 'rg-'
  identity: 'id-'
  functionApp: 'func-'
  plan: 'plan-'
  storage: 'st'
  eventHubs: 'evhns-'
  logAnalytics: 'log-'
  applicationInsights: 'appi-'
  keyVault: 'kv-'
  virtualNetwork: 'vnet-'
}
var token = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var appName = '${abbreviations.functionApp}${token}'
var deploymentContainerName = 'app-package-${take(appName, 32)}-${take(token, 7)}'
var spillContainer = 'state-spill' // adapters.entity.SPILL_CONTAINER
var hostStorageName = '${abbreviations.storage}host${take(token, 16)}'
var stateStorageName = '${abbreviations.storage}data${take(token, 16)}'
var eventHubsNamespaceName = '${abbreviations.eventHubs}${token}'
var keyVaultName = '${abbreviations.keyVault}${take(token, 20)}'
var vnetName = '${abbreviations.virtualNetwork}${token}'
var appSubnetName = 'app'
var privateEndpointSubnetName = 'private-endpoints'
// Built from names, not read from the network module: it exists only when vnetEnabled.
var appSubnetId = resourceId(subscription().subscriptionId, group.name, 'Microsoft.Network/virtualNetworks/subnets', vnetName, appSubnetName)
var secretNames = { webhook: 'webhook-secret', recordPiiKey: 'record-pii-key' }
var hashesPii = recordPii == 'hash'
// Negation last: checkov's parser reads `!a || b` as `!(a || b)`.
var needsKeyVault = hashesPii || !empty(webhookSecret)
// Key Vault references by vault and secret name: the latest version, no module output needed.
var webhookSecretReference = empty(webhookSecret) ? '' : '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${secretNames.webhook})'
var recordPiiKeyReference = hashesPii ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${secretNames.recordPiiKey})' : ''

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbreviations.resourceGroup}${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: group
  params: {
    name: '${abbreviations.identity}${token}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: group
  params: {
    logAnalyticsName: '${abbreviations.logAnalytics}${token}'
    applicationInsightsName: '${abbreviations.applicationInsights}${token}'
    location: location
    tags: tags
  }
}

// The Functions host's own account: deployment package, checkpoints, leases, keys. Locally
// redundant: what it holds is rebuilt or re-read (a lost checkpoint means events read again,
// which the transform absorbs as duplicates).
module hostStorage 'modules/storage.bicep' = {
  name: 'host-storage'
  scope: group
  params: {
    name: hostStorageName
    location: location
    tags: tags
    workspaceId: monitoring.outputs.logAnalyticsId
    vnetEnabled: vnetEnabled
    skuName: 'Standard_LRS'
    verboseLogs: verboseStorageLogs
    containers: [deploymentContainerName]
  }
}

// The pipeline's data: state (Table), records and dead letters (Blob). Kept apart from the
// host's account so neither throttles the other (20,000 requests/s per account). Dead letters
// keep raw payloads as they arrived (phone numbers included): deleted after their retention.
module stateStorage 'modules/storage.bicep' = {
  name: 'state-storage'
  scope: group
  params: {
    name: stateStorageName
    location: location
    tags: tags
    workspaceId: monitoring.outputs.logAnalyticsId
    vnetEnabled: vnetEnabled
    skuName: dataStorageSku
    verboseLogs: verboseStorageLogs
    containers: [recordsContainer, deadletterContainer, spillContainer]
    tables: [stateTableName]
    expiringContainers: [{ container: deadletterContainer, days: deadletterRetentionDays }]
  }
}

module eventHubs 'modules/eventhubs.bicep' = {
  name: 'eventhubs'
  scope: group
  params: {
    namespaceName: eventHubsNamespaceName
    location: location
    tags: tags
    workspaceId: monitoring.outputs.logAnalyticsId
    vnetEnabled: vnetEnabled
    eventHubName: eventHubName
    partitionCount: partitionCount
    consumerGroupName: consumerGroupName
  }
}

module keyVault 'modules/keyvault.bicep' = if (needsKeyVault) {
  name: 'keyvault'
  scope: group
  params: {
    name: keyVaultName
    location: location
    tags: tags
    workspaceId: monitoring.outputs.logAnalyticsId
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
    softDeleteRetentionInDays: keyVaultRetentionDays
    identityPrincipalId: identity.outputs.principalId
    secretNames: secretNames
    webhookSecret: webhookSecret
    webhookSecretExpiresAt: dateTimeToEpoch(dateTimeAdd(deployedAt, 'P${webhookSecretRotationDays}D'))
    recordPiiKey: hashesPii ? recordPiiKey : ''
  }
}

// Every private endpoint: host storage (blob, queue, table: the runtime uses all three), data
// storage (blob, table), the Event Hubs namespace, and the vault when there is one.
var storageType = 'Microsoft.Storage/storageAccounts'
var serviceEndpoints = [
  { name: hostStorageName, type: storageType, group: 'blob' }
  { name: hostStorageName, type: storageType, group: 'queue' }
  { name: hostStorageName, type: storageType, group: 'table' }
  { name: stateStorageName, type: storageType, group: 'blob' }
  { name: stateStorageName, type: storageType, group: 'table' }
  { name: eventHubsNamespaceName, type: 'Microsoft.EventHub/namespaces', group: 'namespace' }
]
var vaultEndpoints = needsKeyVault ? [{ name: keyVaultName, type: 'Microsoft.KeyVault/vaults', group: 'vault' }] : []
var privateLinks = concat(serviceEndpoints, vaultEndpoints)

module network 'modules/network.bicep' = if (vnetEnabled) {
  name: 'network'
  scope: group
  dependsOn: [hostStorage, stateStorage, eventHubs, keyVault] // the endpoints' targets
  params: {
    name: vnetName
    location: location
    tags: tags
    workspaceId: monitoring.outputs.logAnalyticsId
    addressPrefix: vnetAddressPrefix
    appSubnetName: appSubnetName
    appSubnetPrefix: appSubnetPrefix
    privateEndpointSubnetName: privateEndpointSubnetName
    privateEndpointSubnetPrefix: privateEndpointSubnetPrefix
    privateLinks: privateLinks
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: group
  params: {
    identityPrincipalId: identity.outputs.principalId
    eventHubsNamespaceName: eventHubs.outputs.namespaceName
    eventHubName: eventHubs.outputs.hubName
    hostStorageName: hostStorage.outputs.name
    stateStorageName: stateStorage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    operatorPrincipalId: principalId
    operatorPrincipalType: principalType
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: group
  // The app starts with its roles, its secrets and (private) its routes in place.
  dependsOn: [roles, keyVault, network]
  params: {
    name: appName
    planName: '${abbreviations.plan}${token}'
    location: location
    tags: tags
    workspaceId: monitoring.outputs.logAnalyticsId
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    hostStorageName: hostStorage.outputs.name
    deploymentContainerName: deploymentContainerName
    stateBlobEndpoint: stateStorage.outputs.blobEndpoint
    stateTableEndpoint: stateStorage.outputs.tableEndpoint
    eventHubsNamespace: eventHubs.outputs.fullyQualifiedNamespace
    eventHubName: eventHubs.outputs.hubName
    consumerGroupName: eventHubs.outputs.consumerGroupName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    stateTableName: stateTableName
    recordsContainer: recordsContainer
    deadletterContainer: deadletterContainer
    gracePeriodSeconds: gracePeriodSeconds
    idleTimeoutSeconds: idleTimeoutSeconds
    stateRetentionDays: stateRetentionDays
    ingestMediaTypes: ingestMediaTypes
    timerSchedule: timerSchedule
    webhookSecretReference: webhookSecretReference
    recordPii: recordPii
    recordPiiKeyReference: recordPiiKeyReference
    deadletterRetentionDays: deadletterRetentionDays
    appSubnetId: vnetEnabled ? appSubnetId : ''
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: group
  params: {
    name: appName
    location: location
    tags: tags
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    lagThreshold: lagAlertThreshold
    errorRatePercent: errorRateAlertPercent
    alertEmail: alertEmail
  }
}

// azd keeps these in .azure/<env>/.env; named like the app settings, so the ops CLI can read
// them (`azd env get-values`) and authenticate as the operator.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = group.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output WEBHOOK_URL string = 'https://${functionApp.outputs.defaultHostName}/api/v1/genesys/events'
output EVENTHUB_NAME string = eventHubs.outputs.hubName
output EVENTHUB_CONSUMER_GROUP string = eventHubs.outputs.consumerGroupName
output EventHubConnection__fullyQualifiedNamespace string = eventHubs.outputs.fullyQualifiedNamespace
output AzureWebJobsStorage__blobServiceUri string = hostStorage.outputs.blobEndpoint
output StateStorage__blobServiceUri string = stateStorage.outputs.blobEndpoint
output StateStorage__tableServiceUri string = stateStorage.outputs.tableEndpoint
output STATE_TABLE_NAME string = stateTableName
output RECORDS_CONTAINER string = recordsContainer
output DEADLETTER_CONTAINER string = deadletterContainer
output RECORD_PII string = recordPii
output DEADLETTER_RETENTION_DAYS int = deadletterRetentionDays
output VNET_ENABLED bool = vnetEnabled
