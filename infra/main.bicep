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

@allowed([2048, 4096])
param instanceMemoryMB int = 2048
param maximumInstanceCount int = 40
param httpPerInstanceConcurrency int = 16

@secure()
@description('HMAC secret for X-Signature-256 (stored in Key Vault). Empty: no signature.')
param webhookSecret string = ''
@description('E-mail for alert notifications. Empty: alerts fire without notifying.')
param alertEmail string = ''
param lagAlertThreshold int = 10000
param errorRateAlertPercent string = '0.1'

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
}
var token = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var appName = '${abbreviations.functionApp}${token}'
var deploymentContainerName = 'app-package-${take(appName, 32)}-${take(token, 7)}'
var spillContainer = 'state-spill' // adapters.entity.SPILL_CONTAINER

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

// The Functions host's own account: deployment package, checkpoints, leases, keys.
module hostStorage 'modules/storage.bicep' = {
  name: 'host-storage'
  scope: group
  params: {
    name: '${abbreviations.storage}host${take(token, 16)}'
    location: location
    tags: tags
    containers: [deploymentContainerName]
  }
}

// The pipeline's data: state (Table), records and dead letters (Blob). Kept apart from the
// host's account so neither throttles the other (20,000 requests/s per account).
module stateStorage 'modules/storage.bicep' = {
  name: 'state-storage'
  scope: group
  params: {
    name: '${abbreviations.storage}data${take(token, 16)}'
    location: location
    tags: tags
    containers: [recordsContainer, deadletterContainer, spillContainer]
    tables: [stateTableName]
  }
}

module eventHubs 'modules/eventhubs.bicep' = {
  name: 'eventhubs'
  scope: group
  params: {
    namespaceName: '${abbreviations.eventHubs}${token}'
    location: location
    tags: tags
    eventHubName: eventHubName
    partitionCount: partitionCount
    consumerGroupName: consumerGroupName
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

module keyVault 'modules/keyvault.bicep' = if (!empty(webhookSecret)) {
  name: 'keyvault'
  scope: group
  params: {
    name: '${abbreviations.keyVault}${take(token, 20)}'
    location: location
    tags: tags
    webhookSecret: webhookSecret
    identityPrincipalId: identity.outputs.principalId
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
  dependsOn: [roles] // the app starts with its roles in place
  params: {
    name: appName
    planName: '${abbreviations.plan}${token}'
    location: location
    tags: tags
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
    webhookSecretReference: empty(webhookSecret) ? '' : keyVault!.outputs.reference
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
