// The app's secrets: the webhook's HMAC secret and the key that pseudonymizes phone numbers
// (RECORD_PII=hash). App settings are Key Vault references resolved by the app's identity,
// which may read each of these secrets and nothing else in the vault.
param name string
param location string
param tags object
param workspaceId string
@allowed(['Enabled', 'Disabled'])
@description('Disabled with private networking: the vault is reached through its private endpoint only.')
param publicNetworkAccess string
@minValue(7)
@maxValue(90)
@description('Days a deleted vault or secret can be recovered (purge protection holds it that long).')
param softDeleteRetentionInDays int = 90
param identityPrincipalId string
@description('Secret names, shared with the app settings\' references: { webhook, recordPiiKey }.')
param secretNames object
@secure()
@description('The webhook\'s HMAC secret; empty: not stored.')
param webhookSecret string = ''
@description('When the webhook secret is due for rotation (Unix seconds): flagged, not enforced.')
param webhookSecretExpiresAt int
@secure()
@description('The HMAC key of RECORD_PII=hash; empty: not stored.')
param recordPiiKey string = ''

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // Without a VNet, App Service resolves Key Vault references from shared outbound addresses
  // that no firewall rule can name: the vault is open to the network, Entra ID + RBAC only.
  //checkov:skip=CKV_AZURE_109:network default is Deny whenever vnetEnabled; Allow only without a VNet, where the app's outbound addresses are not fixed
  //checkov:skip=CKV_AZURE_189:public network access is Disabled whenever vnetEnabled; without a VNet the app resolves its Key Vault references over the public endpoint
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true // no access policies: roles on single secrets only
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true // not even an owner can destroy a secret before retention ends
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: (publicNetworkAccess == 'Disabled') ? 'Deny' : 'Allow' // brackets: checkov's parser binds ?: first
      bypass: 'None'
    }
  }
}

// The webhook secret is rotated by hand, together with Genesys (docs/security.md): its expiry
// marks when that is due (Key Vault still serves an expired secret, so nothing breaks on the
// day). Each provision sets it again, so the date counts from the last time it was set.
module webhookSecretValue 'secret.bicep' = if (!empty(webhookSecret)) {
  name: 'secret-webhook'
  params: {
    vaultName: vault.name
    name: secretNames.webhook
    value: webhookSecret
    contentType: 'text/plain; HMAC-SHA256 secret of X-Signature-256'
    expiresAt: webhookSecretExpiresAt
    readerPrincipalId: identityPrincipalId
  }
}

// The pseudonymization key never rotates: the same number must keep hashing to the same value.
module recordPiiKeyValue 'secret.bicep' = if (!empty(recordPiiKey)) {
  name: 'secret-record-pii-key'
  params: {
    vaultName: vault.name
    name: secretNames.recordPiiKey
    value: recordPiiKey
    contentType: 'text/plain; HMAC-SHA256 key of RECORD_PII=hash'
    readerPrincipalId: identityPrincipalId
  }
}

// Who read, wrote or deleted which secret, and from where: the audit trail of the vault.
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logs: [{ categoryGroup: 'audit', enabled: true }]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

output id string = vault.id
output name string = vault.name
