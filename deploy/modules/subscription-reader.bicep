// Reader on one subscription for the auditor's identity (a module: a resource-group deployment
// reaches subscription scope only through one). Reader holds only */read actions, so auditor's
// own CAJ-005 does not count it as privileged.
targetScope = 'subscription'

@description('Principal (object) id of the job identity.')
param principalId string

@description('GUID of the built-in role to grant (Reader).')
param roleDefinitionGuid string

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, roleDefinitionGuid)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
  }
}
