// auditor as a scheduled Container Apps job: its identity and roles, a VNet-integrated environment
// that logs to Log Analytics, a storage container for the reports, and the nightly job itself.
//
// Deploy to a resource group (docs/deployment.md):
//   az deployment group create -g RG -f deploy/main.bicep -p @deploy/main.parameters.json
// deploy/main.json is this file compiled to ARM JSON by hand (the Bicep CLI is a downloaded binary
// the project cannot install); tests/deploy/ compare the two, validate main.json, evaluate it and
// run auditor's own checks on the job it defines. Change both files together.

targetScope = 'resourceGroup'

@description('Region of every resource.')
param location string = resourceGroup().location

@description('Name of the job; the other resources are named after it.')
@minLength(2)
@maxLength(24)
param jobName string = 'caj-prod-auditor'

@description('Tags of every resource. The job must carry owner, cost-center and environment (CAJ-030).')
param tags object

@description('Name of the existing Azure Container Registry that holds the auditor image.')
param registryName string

@description('Resource group of that registry (default: this one).')
param registryResourceGroup string = resourceGroup().name

@description('Repository of the image in the registry.')
param imageRepository string = 'auditor'

@description('Digest of the image to run (sha256:...), as printed by docker push: the job runs exactly this build (CAJ-020).')
@minLength(71)
@maxLength(71)
param imageDigest string

@description('Existing subnet for the environment, delegated to Microsoft.App/environments, /27 or larger (CAJ-041).')
param infrastructureSubnetId string

@description('Subscriptions to audit: the job identity gets Reader on each (and auditor scans every subscription it can read).')
param auditedSubscriptionIds array = [
  subscription().subscriptionId
]

@description('Resource ids of the Log Analytics workspaces of the audited environments: the job identity gets Log Analytics Reader on each, for execution history.')
param historyWorkspaceIds array = []

@description('When the job runs: a cron expression in UTC (default 02:30 every night).')
param cronExpression string = '30 2 * * *'

@description('Seconds one run may take; at most the policy maximum of 14400 (CAJ-010) and shorter than the gap between runs (CAJ-012).')
@minValue(300)
@maxValue(14400)
param replicaTimeout int = 7200

@description('Retries of a failed run, at most the policy cap of 3 (CAJ-011). 0: a retry reruns the whole scan, auditor retries throttled requests itself, and exit 1 (findings) is no fault to retry.')
@minValue(0)
@maxValue(3)
param replicaRetryLimit int = 0

@description('vCPUs of the replica; memory follows at 2 GiB per vCPU, within the policy caps of 2 vCPU and 4 GiB (CAJ-015).')
@allowed([
  '0.5'
  '1.0'
  '2.0'
])
param cpu string = '1.0'

@description('Storage account for the reports: created here, globally unique, 3 to 24 lower-case letters and digits.')
@minLength(3)
@maxLength(24)
param reportsStorageAccountName string = 'audit${uniqueString(resourceGroup().id)}'

@description('Blob container for the reports.')
param reportsContainerName string = 'audit-reports'

@description('Prefix of every report folder in the container: runs upload to PREFIX/RUN-FOLDER/.')
param reportsPrefix string = 'nightly'

var roleIds = {
  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
  logAnalyticsReader: '73c42c96-874c-492b-b04d-ab87d138a893'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
}
var memoryForCpu = {
  '0.5': '1Gi'
  '1.0': '2Gi'
  '2.0': '4Gi'
}
var registryServer = '${registryName}${environment().suffixes.acrLoginServer}'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${jobName}-id'
  location: location
  tags: tags
}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${jobName}-logs'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 90
  }
}

resource managedEnvironment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: '${jobName}-env'
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: workspace.properties.customerId
        sharedKey: workspace.listKeys().primarySharedKey
      }
    }
    vnetConfiguration: {
      infrastructureSubnetId: infrastructureSubnetId
      internal: true
    }
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
    ]
  }
}

resource reports 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: reportsStorageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource reportsBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: reports
  name: 'default'
  properties: {
    isVersioningEnabled: true
    deleteRetentionPolicy: {
      enabled: true
      days: 30
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 30
    }
  }
}

resource reportsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: reportsBlobService
  name: reportsContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Least privilege: read-only on what the job audits, write only to its own report container.

module subscriptionReader 'modules/subscription-reader.bicep' = [for subscriptionId in auditedSubscriptionIds: {
  name: 'auditor-reader-${uniqueString(subscriptionId, jobName)}'
  scope: subscription(subscriptionId)
  params: {
    principalId: identity.properties.principalId
    roleDefinitionGuid: roleIds.reader
  }
}]

module historyReader 'modules/workspace-reader.bicep' = [for workspaceId in historyWorkspaceIds: {
  name: 'auditor-logs-${uniqueString(workspaceId, jobName)}'
  scope: resourceGroup(split(workspaceId, '/')[2], split(workspaceId, '/')[4])
  params: {
    workspaceName: last(split(workspaceId, '/'))
    principalId: identity.properties.principalId
    roleDefinitionGuid: roleIds.logAnalyticsReader
  }
}]

resource ownLogsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, identity.id, roleIds.logAnalyticsReader)
  scope: workspace
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.logAnalyticsReader)
  }
}

resource reportsWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(reportsContainer.id, identity.id, roleIds.storageBlobDataContributor)
  scope: reportsContainer
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageBlobDataContributor)
  }
}

module imagePull 'modules/acr-pull.bicep' = {
  name: 'auditor-acrpull-${uniqueString(registryName, jobName)}'
  scope: resourceGroup(registryResourceGroup)
  params: {
    registryName: registryName
    principalId: identity.properties.principalId
    roleDefinitionGuid: roleIds.acrPull
  }
}

resource job 'Microsoft.App/jobs@2024-03-01' = {
  name: jobName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    environmentId: managedEnvironment.id
    workloadProfileName: 'Consumption'
    configuration: {
      triggerType: 'Schedule'
      replicaTimeout: replicaTimeout
      replicaRetryLimit: replicaRetryLimit
      scheduleTriggerConfig: {
        cronExpression: cronExpression
        parallelism: 1
        replicaCompletionCount: 1
      }
      registries: [
        {
          server: registryServer
          identity: identity.id
        }
      ]
    }
    template: {
      containers: [
        {
          name: 'auditor'
          image: '${registryServer}/${imageRepository}@${imageDigest}'
          args: [
            'scan'
            '--auth'
            'managed-identity'
            '--exit-zero-on-findings'
            '--upload'
            '${reports.properties.primaryEndpoints.blob}${reportsContainerName}/${reportsPrefix}'
          ]
          env: [
            {
              name: 'AZURE_CLIENT_ID'
              value: identity.properties.clientId
            }
          ]
          resources: {
            cpu: json(cpu)
            memory: memoryForCpu[cpu]
          }
        }
      ]
    }
  }
  dependsOn: [
    imagePull
    subscriptionReader
    reportsWriter
  ]
}

output jobId string = job.id
output identityPrincipalId string = identity.properties.principalId
output identityClientId string = identity.properties.clientId
output uploadUrl string = '${reports.properties.primaryEndpoints.blob}${reportsContainerName}/${reportsPrefix}'
output workspaceCustomerId string = workspace.properties.customerId
