// The Flex Consumption function app (Python 3.13) and its app settings: identity-based
// connections only (`<NAME>__…` settings, DefaultAzureCredential / the host's managed identity).
param name string
param planName string
param location string
param tags object
param identityId string
param identityClientId string
param hostStorageName string
param deploymentContainerName string
param stateBlobEndpoint string
param stateTableEndpoint string
param eventHubsNamespace string
param eventHubName string
param consumerGroupName string
param applicationInsightsName string
param stateTableName string
param recordsContainer string
param deadletterContainer string
param gracePeriodSeconds int
param idleTimeoutSeconds int
param stateRetentionDays int
@description('INGEST_MEDIA_TYPES: media types whose conversations are kept (empty: all).')
param ingestMediaTypes string
param timerSchedule string
@description('Key Vault reference for WEBHOOK_SECRET (empty: no signature required).')
param webhookSecretReference string = ''
@allowed(['keep', 'hash', 'drop'])
@description('RECORD_PII: phone numbers kept, pseudonymized (keyed HMAC) or dropped before storage.')
param recordPii string = 'keep'
@description('Key Vault reference for RECORD_PII_KEY (empty unless recordPii is hash).')
param recordPiiKeyReference string = ''
@description('DEADLETTER_RETENTION_DAYS: dead letters are deleted this long after they were written.')
param deadletterRetentionDays int
@description('The VNet integration subnet (empty: no VNet, outbound over the internet).')
param appSubnetId string = ''
param workspaceId string
@allowed([2048, 4096])
param instanceMemoryMB int = 2048
@description('Instances at most; the Event Hubs function uses at most one per partition.')
param maximumInstanceCount int = 40
@description('HTTP requests one instance serves at once (Python defaults to 1: set it).')
param httpPerInstanceConcurrency int = 16

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  //checkov:skip=CKV_AZURE_225:the app holds no state (events wait in Event Hubs, state is in the zone-redundant data account): a zone outage delays processing and loses nothing
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: { reserved: true }
}

var appSettings = {
  // The host's own storage (checkpoints, timer locks, keys): identity-based.
  AzureWebJobsStorage__blobServiceUri: hostStorage.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: hostStorage.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: hostStorage.properties.primaryEndpoints.table
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // Event Hubs: the trigger (host) and the producer (ingest) use the same connection.
  EventHubConnection__fullyQualifiedNamespace: eventHubsNamespace
  EventHubConnection__credential: 'managedidentity'
  EventHubConnection__clientId: identityClientId
  EVENTHUB_NAME: eventHubName
  EVENTHUB_CONSUMER_GROUP: consumerGroupName
  // State, records and dead letters: a separate account.
  StateStorage__blobServiceUri: stateBlobEndpoint
  StateStorage__tableServiceUri: stateTableEndpoint
  StateStorage__credential: 'managedidentity'
  StateStorage__clientId: identityClientId
  STATE_TABLE_NAME: stateTableName
  RECORDS_CONTAINER: recordsContainer
  DEADLETTER_CONTAINER: deadletterContainer
  GRACE_PERIOD_SECONDS: string(gracePeriodSeconds)
  IDLE_TIMEOUT_SECONDS: string(idleTimeoutSeconds)
  STATE_RETENTION_DAYS: string(stateRetentionDays)
  INGEST_MEDIA_TYPES: ingestMediaTypes
  TIMER_SCHEDULE: timerSchedule
  // Personal data: how phone numbers are stored; how long raw payloads are kept.
  RECORD_PII: recordPii
  DEADLETTER_RETENTION_DAYS: string(deadletterRetentionDays)
  // DefaultAzureCredential in the app code picks the user-assigned identity by this.
  AZURE_CLIENT_ID: identityClientId
  // Not a secret: local auth is off, ingestion needs the identity's Entra token.
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

var webhookSecretSetting = empty(webhookSecretReference) ? {} : { WEBHOOK_SECRET: webhookSecretReference }
var recordPiiKeySetting = empty(recordPiiKeyReference) ? {} : { RECORD_PII_KEY: recordPiiKeyReference }

resource app 'Microsoft.Web/sites@2024-04-01' = {
  //checkov:skip=CKV_AZURE_222:the webhook is public by design: Genesys Cloud and EventBridge call it over the internet, with a function key and optionally an HMAC signature
  //checkov:skip=CKV_AZURE_17:Genesys Cloud and EventBridge API destinations present no client certificate; callers prove themselves with the function key and the HMAC signature
  //checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero by design; while no instance runs, events wait in Event Hubs and webhook senders retry
  //checkov:skip=CKV_AZURE_213:App Service health check takes instances of a fixed pool out of rotation; Flex Consumption has none (per-function scale from zero); GET /api/health is there for outside probes
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    // Outbound only: with a VNet every call the app makes (storage, Event Hubs, Key Vault
    // references) leaves through this subnet; inbound stays on the public HTTPS endpoint.
    virtualNetworkSubnetId: empty(appSubnetId) ? null : appSubnetId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostStorage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      runtime: {
        name: 'python'
        version: '3.13'
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
    }
  }

  // checkov reads the appsettings resource as a site config: these are about the site.
  resource settings 'config' = {
    //checkov:skip=CKV_AZURE_222:the webhook is public by design: Genesys Cloud and EventBridge call it over the internet, with a function key and optionally an HMAC signature
    //checkov:skip=CKV_AZURE_13:callers are Genesys Cloud and EventBridge, which cannot obtain Entra ID tokens; they authenticate with the function key and the HMAC signature
    //checkov:skip=CKV_AZURE_88:Flex Consumption has no content file share: the package runs from a blob container
    //checkov:skip=CKV_AZURE_80:a Python app: no .NET Framework
    //checkov:skip=CKV_AZURE_63:IIS file-system HTTP logs do not exist on Linux Flex; requests go to Application Insights and the FunctionAppLogs diagnostic setting
    //checkov:skip=CKV_AZURE_65:IIS detailed error pages do not exist on Linux Flex; errors go to Application Insights and the FunctionAppLogs diagnostic setting
    //checkov:skip=CKV_AZURE_66:IIS failed-request tracing does not exist on Linux Flex; failed requests go to Application Insights (the error-rate alert reads them)
    name: 'appsettings'
    properties: union(appSettings, webhookSecretSetting, recordPiiKeySetting)
  }
}

// No FTP, no basic-auth deployments: azd and `func publish` deploy with Entra ID tokens.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: { allow: false }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: { allow: false }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: app
  properties: {
    workspaceId: workspaceId
    logs: [{ category: 'FunctionAppLogs', enabled: true }]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

output name string = app.name
output defaultHostName string = app.properties.defaultHostName
