// The Flex Consumption function app (Python 3.11) and its app settings: identity-based
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
@description('Key Vault reference for WEBHOOK_SECRET (empty: no signature required).')
param webhookSecretReference string = ''
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
  // DefaultAzureCredential in the app code picks the user-assigned identity by this.
  AZURE_CLIENT_ID: identityClientId
  // Not a secret: local auth is off, ingestion needs the identity's Entra token.
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

var secretSettings = empty(webhookSecretReference) ? {} : { WEBHOOK_SECRET: webhookSecretReference }

resource app 'Microsoft.Web/sites@2024-04-01' = {
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
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
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
        version: '3.11'
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

  resource settings 'config' = {
    name: 'appsettings'
    properties: union(appSettings, secretSettings)
  }
}

output name string = app.name
output defaultHostName string = app.properties.defaultHostName
