DROP TABLE activities;
DROP TABLE tasks;
DROP TABLE leads;
DROP TABLE opportunities;
DROP TABLE contacts;
DROP TABLE companies;
