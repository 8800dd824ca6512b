// A storage account reached by identity only (shared keys off), with its containers and tables.
// Private (vnetEnabled): no public endpoint at all, the app reaches it through private endpoints.
param name string
param location string
param tags object
param workspaceId string
@description('Off the internet: public network access disabled, network default Deny.')
param vnetEnabled bool
@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GRS', 'Standard_GZRS', 'Standard_RAGRS', 'Standard_RAGZRS'])
param skuName string
@description('Blob containers to create.')
param containers array = []
@description('Tables to create.')
param tables array = []
@description('Containers whose blobs are deleted a number of days after creation: [{ container, days }].')
param expiringContainers array = []
@description('Read and write logs of the data plane too (deletes are always logged): one line per request.')
param verboseLogs bool = false

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // Without a VNet, Flex Consumption reaches storage from shared outbound addresses that no
  // firewall rule can name (and the operator's ops CLI from wherever the operator is).
  //checkov:skip=CKV_AZURE_35:network default is Deny whenever vnetEnabled; Allow only without a VNet, where the app's outbound addresses are not fixed
  //checkov:skip=CKV_AZURE_206:the data account takes dataStorageSku (ZRS by default); the host account is LRS on purpose: a lost checkpoint only means events read again as duplicates
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: skuName }
  properties: {
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false // no keys, no connection strings: Entra ID only
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
    networkAcls: {
      defaultAction: vnetEnabled ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for container in containers: {
    parent: blobService
    name: container
    properties: { publicAccess: 'None' }
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource storageTables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for table in tables: {
    parent: tableService
    name: table
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

// Creation, not modification: replaying a dead letter must not extend how long it is kept.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = if (!empty(expiringContainers)) {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        for rule in expiringContainers: {
          name: 'expire-${rule.container}'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: ['blockBlob']
              prefixMatch: ['${rule.container}/']
            }
            actions: {
              baseBlob: {
                delete: { daysAfterCreationGreaterThan: rule.days }
              }
            }
          }
        }
      ]
    }
  }
  dependsOn: [blobContainers]
}

// Storage logs only per service; the account itself has metrics. Deletes are always logged
// (state purges, erasures, lifecycle), reads and writes only on request: one log line per
// request would cost more than the pipeline at a few hundred events per second.
var logCategories = concat(['StorageDelete'], verboseLogs ? ['StorageRead', 'StorageWrite'] : [])
var serviceDiagnostics = {
  workspaceId: workspaceId
  logs: [for category in logCategories: { category: category, enabled: true }]
  metrics: [{ category: 'Transaction', enabled: true }]
}

resource accountDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: account
  properties: {
    workspaceId: workspaceId
    metrics: [{ category: 'Transaction', enabled: true }]
  }
}

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: blobService
  properties: serviceDiagnostics
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: tableService
  properties: serviceDiagnostics
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: queueService
  properties: serviceDiagnostics
}

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
