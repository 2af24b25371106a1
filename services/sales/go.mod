module github.com/crmcycle/crm/services/sales

go 1.26.8

require (
	github.com/crmcycle/crm/pkg v0.0.0-00010101000000-000000000000
	github.com/crmcycle/crm/proto v0.0.0-00010101000000-000000000000
)

replace github.com/crmcycle/crm/proto => ../../proto

replace github.com/crmcycle/crm/pkg => ../../pkg
